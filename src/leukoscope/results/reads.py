"""Reading a sample back from the results database over an open connection: its progress, results,
ledger, and which stored cells its differential counts (`mark_counted` writes that down).

Functions here take the connection (the caller holds the store's lock and transaction) and the
file's path (for error messages). Counting is never done here: the ledger is rebuilt from the rows
and `counts.differential_cells` decides, exactly as for the summary.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from leukoscope.errors import StorageError
from leukoscope.results.counts import differential_cells, stop_decision
from leukoscope.results.ledger import SampleLedger
from leukoscope.types import NOT_WHITE, UNIDENTIFIED, CellClass, CellKey, CellResult, SampleStatus

log = logging.getLogger(__name__)
NOT_WHITE_JSON = json.dumps(sorted(c.value for c in NOT_WHITE))


@dataclass
class SampleProgress:
    """What the store knows of a sample: enough for an aggregator to resume it."""

    run_id: str
    sample_id: str
    status: SampleStatus
    reason: str
    target_cells: int
    fields_total: int | None
    fields_done: dict[int, int] = field(default_factory=dict)  # fov -> cell count
    fields_failed: dict[int, str] = field(default_factory=dict)  # fov -> reason
    cell_keys: set[CellKey] = field(default_factory=set)
    simulated: bool | None = False  # None: stored before the store recorded it


def simulated(row: sqlite3.Row) -> bool | None:
    """The sample's `simulated`; None when not recorded (NULL, or a schema-1 file read only)."""
    value = row["simulated"] if "simulated" in row.keys() else None  # noqa: SIM118 (Row: keys)
    return None if value is None else bool(value)


def sample_row(db: sqlite3.Connection, path: Path, run_id: str, sample_id: str) -> sqlite3.Row:
    """The sample's row; StorageError when the run does not hold it."""
    row = db.execute(
        "SELECT * FROM samples WHERE run_id=? AND sample_id=?", (run_id, sample_id)
    ).fetchone()
    if row is None:
        raise StorageError(f"{path}: no sample {sample_id!r} in run {run_id!r}")
    return cast(sqlite3.Row, row)


def aborted(row: sqlite3.Row) -> str:
    """The abort reason of an incomplete sample ("" otherwise): what the stop rule is told."""
    return str(row["reason"] or "") if row["status"] == SampleStatus.INCOMPLETE.value else ""


def progress(db: sqlite3.Connection, path: Path, run_id: str, sample_id: str) -> SampleProgress:
    """Fields done/failed and cells known for a sample (to resume it)."""
    row = sample_row(db, path, run_id, sample_id)
    found = SampleProgress(
        run_id=run_id,
        sample_id=sample_id,
        status=SampleStatus(row["status"]),
        reason=row["reason"],
        target_cells=row["target_cells"],
        fields_total=row["fields_total"],
        simulated=simulated(row),
    )
    for f in db.execute(
        "SELECT fov, cell_count, status, reason FROM fields WHERE run_id=? AND sample_id=?",
        (run_id, sample_id),
    ):
        if f["status"] == "done":
            found.fields_done[f["fov"]] = f["cell_count"]
        else:
            found.fields_failed[f["fov"]] = f["reason"]
    found.cell_keys = {
        CellKey(sample_id, r["fov"], r["cell_index"])
        for r in db.execute(
            "SELECT fov, cell_index FROM cells WHERE run_id=? AND sample_id=?", (run_id, sample_id)
        )
    }
    return found


def cell_result(row: sqlite3.Row) -> CellResult:
    """A stored cell row as the classifier's result (ValueError/TypeError when corrupt)."""
    return CellResult(
        key=CellKey(row["sample_id"], row["fov"], row["cell_index"]),
        cell_class=CellClass(row["cell_class"]),
        probabilities=tuple(json.loads(row["probabilities"])),
        head_probabilities=tuple(tuple(h) for h in json.loads(row["head_probabilities"])),
        disagreement=row["disagreement"],
        flagged=bool(row["flagged"]),
        flag_reason=row["flag_reason"],
        bbox=(row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]),
    )


def results(db: sqlite3.Connection, path: Path, run_id: str, sample_id: str) -> list[CellResult]:
    """Every stored result of a sample, in (fov, cell_index) order."""
    rows = db.execute(
        "SELECT * FROM cells WHERE run_id=? AND sample_id=? ORDER BY fov, cell_index",
        (run_id, sample_id),
    )
    try:
        return [cell_result(r) for r in rows]
    except (ValueError, TypeError) as exc:
        raise StorageError(f"{path}: corrupt cell row for {sample_id!r}: {exc}") from None


def ledger(db: sqlite3.Connection, path: Path, run_id: str, sample_id: str) -> SampleLedger:
    """The sample's ledger rebuilt from the store (what an aggregator resumes from)."""
    known = progress(db, path, run_id, sample_id)
    rebuilt = SampleLedger(sample_id, target_cells=known.target_cells, simulated=known.simulated)
    for fov, count in sorted(known.fields_done.items()):
        rebuilt.set_cell_count(fov, count)
    for fov, reason in sorted(known.fields_failed.items()):
        rebuilt.fail_field(fov, reason)
    rebuilt.add_results(results(db, path, run_id, sample_id))
    if known.fields_total is not None:
        rebuilt.end(known.fields_total)
    return rebuilt


def counted_keys(
    db: sqlite3.Connection, path: Path, run_id: str, sample_id: str
) -> set[CellKey] | None:
    """The keys of the cells the sample's final differential counts; None while it can still
    change (the stop rule is not met: the sample is running)."""
    why = aborted(sample_row(db, path, run_id, sample_id))
    rebuilt = ledger(db, path, run_id, sample_id)
    if not stop_decision(rebuilt, why).finished:
        return None
    return {r.key for r in differential_cells(rebuilt, why)}


def mark_counted(db: sqlite3.Connection, path: Path, run_id: str, sample_id: str) -> None:
    """Write `cells.counted` for every stored cell of the sample: 1 in its white-cell differential,
    0 not (unidentified cells and nucleated red cells, counted beside it, are 0 too); NULL for all
    while the differential can still change."""
    keys = counted_keys(db, path, run_id, sample_id)
    if keys is None:
        db.execute(
            "UPDATE cells SET counted=NULL WHERE run_id=? AND sample_id=?", (run_id, sample_id)
        )
        return
    db.execute("UPDATE cells SET counted=0 WHERE run_id=? AND sample_id=?", (run_id, sample_id))
    db.executemany(
        "UPDATE cells SET counted=1 WHERE run_id=? AND sample_id=? AND fov=? AND cell_index=?"
        " AND flag_reason NOT LIKE ? AND cell_class NOT IN (SELECT value FROM json_each(?))",
        [(run_id, sample_id, k.fov, k.cell_index, f"{UNIDENTIFIED}%", NOT_WHITE_JSON)
         for k in keys],
    )  # fmt: skip


def mark_all_counted(db: sqlite3.Connection, path: Path) -> None:
    """`mark_counted` for every sample in the file (the schema 2 -> 3 backfill); a sample whose
    rows cannot be read keeps NULL (undecided) and is logged, the others are marked."""
    samples = db.execute("SELECT run_id, sample_id FROM samples").fetchall()
    for run_id, sample_id in samples:
        try:
            mark_counted(db, path, run_id, sample_id)
        except StorageError as exc:
            log.warning("counted cells of %s in run %s left undecided: %s", sample_id, run_id, exc)
