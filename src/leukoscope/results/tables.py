"""The three tables a user lists or exports: runs, samples and cells, as typed rows.

Read through the same SELECTs as the database's views (`run_list`, `sample_list`, `cell_list`;
`schema.py`), so `leukoscope runs|samples|cells` and a SQL or pandas user see the same
columns and values. Times are ISO 8601 UTC. A schema-1/2 file opened read-only has no views: the
same SELECTs run with NULL for the missing columns, and `counted` is decided by counts.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from leukoscope.results.interrupted import shown_status
from leukoscope.results.schema import (
    PROBABILITY_COLUMNS,
    cell_list_sql,
    run_list_sql,
    sample_list_sql,
)
from leukoscope.results.store import ResultStore


@dataclass(frozen=True)
class RunRow:
    """One run: when, how many samples, and the model that classified them."""

    run_id: str
    started_utc: str
    finished_utc: str | None
    samples: int
    model_version: str  # architecture, checkpoint time, sha256 of the model file; "" if none
    model_path: str
    config_digest: str


@dataclass(frozen=True)
class SampleRow:
    """One sample of one run: status and the figures of its recorded summary."""

    run_id: str
    sample_id: str
    status: str
    reason: str
    simulated: bool | None  # None: stored before leukoscope recorded it
    target_cells: int
    cells_counted: int
    cells_flagged: int
    fields_done: int
    fields_failed: int
    fields_total: int | None
    started_utc: str
    finished_utc: str | None
    elapsed_s: float
    source: str


@dataclass(frozen=True)
class CellRow:
    """One stored cell: its class, whether the differential counts it, its probabilities."""

    run_id: str
    sample_id: str
    fov: int
    cell_index: int
    cell_class: str
    counted: bool | None  # None: the sample's differential is not final yet
    flagged: bool
    flag_reason: str
    disagreement: float
    probabilities: tuple[float | None, ...]  # in PROBABILITY_COLUMNS order (None: not named)
    bbox_x: int
    bbox_y: int
    bbox_w: int
    bbox_h: int
    worker: str | None  # the classify worker's name (None: not recorded)
    worker_key: str | None  # its CurveZMQ key's name ('' without keys)
    segment_worker: str | None  # the segment worker that cut the cell from its field
    simulated: bool | None

    def record(self) -> dict[str, Any]:
        """The row as `CELL_COLUMNS` -> value (one probability column per class)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.pop("probabilities")
        row: dict[str, Any] = {}
        for name, value in values.items():
            row[name] = value
            if name == "disagreement":
                row.update(zip(PROBABILITY_COLUMNS, self.probabilities, strict=True))
        return row


RUN_COLUMNS = tuple(f.name for f in fields(RunRow))
SAMPLE_COLUMNS = tuple(f.name for f in fields(SampleRow))
CELL_COLUMNS = tuple(
    c
    for f in fields(CellRow)
    for c in (PROBABILITY_COLUMNS if f.name == "probabilities" else (f.name,))
)
"""Columns of `leukoscope cells` (CSV, Parquet) and of the view `cell_list`, in order."""


def record(row: RunRow | SampleRow) -> dict[str, Any]:
    """A run or sample row as column -> value."""
    return asdict(row)


def _flag(value: object) -> bool | None:
    return None if value is None else bool(value)


def _columns(store: ResultStore, table: str) -> set[str]:
    return {r["name"] for r in store.query(f"PRAGMA table_info({table})")}


def run_rows(store: ResultStore) -> list[RunRow]:
    """Every run, oldest first."""
    return [RunRow(**dict(r)) for r in store.query(run_list_sql())]


def sample_rows(store: ResultStore, run_id: str | None = None) -> list[SampleRow]:
    """The samples of one run (or all), in start order (one whose run was killed before it
    finished: `interrupted`)."""
    sql = sample_list_sql(has_simulated="simulated" in _columns(store, "samples"))
    rows = [dict(r) for r in store.query(sql)]
    return [
        SampleRow(
            **{
                **r,
                "simulated": _flag(r["simulated"]),
                "status": shown_status(r["status"], r["reason"] or ""),
            }
        )
        for r in rows
        if run_id is None or r["run_id"] == run_id
    ]


def cell_rows(store: ResultStore, run_id: str, sample_id: str) -> list[CellRow]:
    """Every stored cell of one sample of one run, in (fov, cell_index) order."""
    cell_columns = _columns(store, "cells")
    has_counted = "counted" in cell_columns
    sql = cell_list_sql(
        has_counted, "simulated" in _columns(store, "samples"), "worker" in cell_columns
    )
    rows = [
        dict(r)
        for r in store.query(
            f"SELECT * FROM ({sql}) WHERE run_id=? AND sample_id=?", (run_id, sample_id)
        )
    ]
    if not has_counted:  # a schema-1/2 file read as it is: decided here by counts.py
        keys = store.counted_keys(run_id, sample_id)
        counted = None if keys is None else {(k.fov, k.cell_index) for k in keys}
        for r in rows:
            r["counted"] = None if counted is None else (r["fov"], r["cell_index"]) in counted
    return [_typed_cell(r) for r in rows]


def _probability(value: Any) -> float | None:
    """A probability column's value; None for a class the run's model does not name."""
    return None if value is None else float(value)


def _typed_cell(values: dict[str, Any]) -> CellRow:
    return CellRow(
        run_id=values["run_id"],
        sample_id=values["sample_id"],
        fov=int(values["fov"]),
        cell_index=int(values["cell_index"]),
        cell_class=values["cell_class"],
        counted=_flag(values["counted"]),
        flagged=bool(values["flagged"]),
        flag_reason=values["flag_reason"],
        disagreement=float(values["disagreement"]),
        probabilities=tuple(_probability(values[c]) for c in PROBABILITY_COLUMNS),
        bbox_x=int(values["bbox_x"]),
        bbox_y=int(values["bbox_y"]),
        bbox_w=int(values["bbox_w"]),
        bbox_h=int(values["bbox_h"]),
        worker=values["worker"],
        worker_key=values["worker_key"],
        segment_worker=values["segment_worker"],
        simulated=_flag(values["simulated"]),
    )
