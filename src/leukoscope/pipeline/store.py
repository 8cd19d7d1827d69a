"""Results in SQLite (WAL): runs, samples, fields and cells; resume, summaries, CSV/JSON export.

Every insert is idempotent by its key (a cell by (run, sample, fov, cell_index)), so replaying a
stream after a crash stores each cell once. Thread-safety: one `ResultStore` holds one connection,
guarded by a lock, usable from any thread; other processes open their own `ResultStore` on the same
file (WAL lets readers run beside the writer). Counting is never done here: summaries are rebuilt
through `ledger.SampleLedger` and `counts.summarize`.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np

from leukoscope.errors import StorageError
from leukoscope.pipeline.counts import differential_cells, summarize
from leukoscope.pipeline.ledger import SampleLedger
from leukoscope.types import (
    CELL_CLASSES,
    CellClass,
    CellKey,
    CellResult,
    SampleStatus,
    SampleSummary,
)

SCHEMA_VERSION = 2
"""2 added `samples.simulated` (1: simulated, 0: acquired; NULL: stored before it was recorded)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_s REAL NOT NULL,
    finished_s REAL,
    model_path TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '',
    config_digest TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    sample_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',
    reason TEXT NOT NULL DEFAULT '',
    target_cells INTEGER NOT NULL DEFAULT 200,
    fields_total INTEGER,
    fields_done INTEGER NOT NULL DEFAULT 0,
    fields_failed INTEGER NOT NULL DEFAULT 0,
    cells_counted INTEGER NOT NULL DEFAULT 0,
    cells_flagged INTEGER NOT NULL DEFAULT 0,
    started_s REAL NOT NULL,
    finished_s REAL,
    elapsed_s REAL NOT NULL DEFAULT 0,
    timings TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT '',
    simulated INTEGER,
    PRIMARY KEY (run_id, sample_id)
);
CREATE TABLE IF NOT EXISTS fields (
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    fov INTEGER NOT NULL,
    cell_count INTEGER,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, sample_id, fov)
);
CREATE TABLE IF NOT EXISTS cells (
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    fov INTEGER NOT NULL,
    cell_index INTEGER NOT NULL,
    cell_class TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    head_probabilities TEXT NOT NULL,
    disagreement REAL NOT NULL,
    flagged INTEGER NOT NULL,
    flag_reason TEXT NOT NULL,
    bbox_x INTEGER NOT NULL, bbox_y INTEGER NOT NULL, bbox_w INTEGER NOT NULL, bbox_h INTEGER NOT NULL,
    thumbnail BLOB,
    PRIMARY KEY (run_id, sample_id, fov, cell_index)
);
"""

CSV_COLUMNS = (
    "run_id",
    "sample_id",
    "fov",
    "cell_index",
    "cell_class",
    "label",
    "flagged",
    "flag_reason",
    "disagreement",
    *(f"p_{c.value}" for c in CELL_CLASSES),
    "bbox_x",
    "bbox_y",
    "bbox_w",
    "bbox_h",
    "simulated",
)


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


def png_thumbnail(image: np.ndarray) -> bytes:
    """PNG bytes of a crop (H x W or H x W x C, uint8 or uint16) for the report gallery."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise StorageError(f"cannot encode a {image.shape} {image.dtype} thumbnail as PNG")
    return bytes(data.tobytes())


def _simulated(row: sqlite3.Row) -> bool | None:
    """The sample's `simulated`; None when not recorded (NULL, or a schema-1 file read only)."""
    value = row["simulated"] if "simulated" in row.keys() else None  # noqa: SIM118 (Row: keys)
    return None if value is None else bool(value)


def _csv_simulated(value: object) -> str:
    """`true`, `false`, or `unknown` (stored before it was recorded)."""
    return "unknown" if value is None else str(bool(value)).lower()


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2: add `samples.simulated`, NULL (not recorded) for the samples already there."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(samples)")}
    if "simulated" not in columns:
        db.execute("ALTER TABLE samples ADD COLUMN simulated INTEGER")
    db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))


class ResultStore:
    """A results database file; use as a context manager or call `close()`."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.read_only = read_only
        if read_only:
            self._db = self._open_read_only()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"{self.path}: cannot open results database: {exc}") from None
        try:
            self._init_schema()
        except BaseException:
            self._db.close()
            raise

    def _open_read_only(self) -> sqlite3.Connection:
        """Open for reading only, also on read-only media (where SQLite cannot make its WAL
        index file: then the file is opened as immutable); the schema is checked, not migrated."""
        uri = f"file:{quote(str(self.path.resolve()))}"
        for mode in ("?mode=ro", "?immutable=1"):
            try:
                db = sqlite3.connect(uri + mode, uri=True, check_same_thread=False, timeout=30.0)
                db.row_factory = sqlite3.Row
                row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            except sqlite3.Error as exc:
                error = exc
                continue
            if row is None or row[0] not in ("1", str(SCHEMA_VERSION)):
                db.close()
                found = "none" if row is None else row[0]
                raise StorageError(
                    f"{self.path}: results schema {found}, this build reads {SCHEMA_VERSION}"
                )
            return db
        raise StorageError(f"{self.path}: cannot open results database: {error}")

    def _init_schema(self) -> None:
        db = self._db
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            with db:
                db.executescript(_SCHEMA)
                row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                elif row[0] == "1":
                    _migrate_1_to_2(db)
                    row = (str(SCHEMA_VERSION),)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open results database: {exc}") from None
        if row is not None and row[0] != str(SCHEMA_VERSION):
            raise StorageError(
                f"{self.path}: results schema {row[0]}, this build reads {SCHEMA_VERSION}"
            )

    # -- plumbing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; sqlite errors become StorageError."""
        with self._lock:
            try:
                with self._db:
                    yield self._db
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: {exc}") from None

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._tx() as db:
            return list(db.execute(sql, params).fetchall())

    # -- runs and samples ---------------------------------------------------------------------

    def start_run(
        self,
        run_id: str | None = None,
        *,
        model_path: str = "",
        model_version: str = "",
        config_digest: str = "",
        started_s: float | None = None,
    ) -> str:
        """Record a run (a new id unless given; an existing id is resumed as is); its id."""
        run_id = run_id or uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO runs (run_id, started_s, model_path, model_version,"
                " config_digest) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time() if started_s is None else started_s, model_path,
                 model_version, config_digest),
            )  # fmt: skip
        return run_id

    def finish_run(self, run_id: str, finished_s: float | None = None) -> None:
        """Mark a run finished."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET finished_s=? WHERE run_id=?",
                (time.time() if finished_s is None else finished_s, run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first."""
        return [dict(r) for r in self._query("SELECT * FROM runs ORDER BY started_s, run_id")]

    def start_sample(
        self,
        run_id: str,
        sample_id: str,
        *,
        target_cells: int = 200,
        fields_total: int | None = None,
        started_s: float | None = None,
        source: str = "",
        simulated: bool = False,
    ) -> None:
        """Record a sample of a run (no-op if it exists, apart from filling a missing total).

        `source` is the saved-acquisition folder the sample's fields can be re-read from;
        `simulated` marks a sample whose fields come from the simulator.
        """
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO samples (run_id, sample_id, target_cells, fields_total,"
                " started_s, source, simulated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, sample_id, target_cells, fields_total,
                 time.time() if started_s is None else started_s, source, int(simulated)),
            )  # fmt: skip
            if fields_total is not None:
                self._set_total(db, run_id, sample_id, fields_total)

    @staticmethod
    def _set_total(db: sqlite3.Connection, run_id: str, sample_id: str, total: int) -> None:
        db.execute(
            "UPDATE samples SET fields_total=? WHERE run_id=? AND sample_id=?"
            " AND fields_total IS NULL",
            (total, run_id, sample_id),
        )

    def set_fields_total(
        self, run_id: str, sample_id: str, fields_total: int, *, replace: bool = False
    ) -> None:
        """Record how many fields the sample has (from `sample_end`); first value wins, unless
        `replace` (the aggregator bounded an announced total to the fields that came)."""
        with self._tx() as db:
            if replace:
                db.execute(
                    "UPDATE samples SET fields_total=? WHERE run_id=? AND sample_id=?",
                    (fields_total, run_id, sample_id),
                )
            else:
                self._set_total(db, run_id, sample_id, fields_total)

    def add_field(
        self,
        run_id: str,
        sample_id: str,
        fov: int,
        cell_count: int | None,
        *,
        failed: bool = False,
        reason: str = "",
    ) -> bool:
        """Record a field as done (with its cell count) or failed; False if already recorded.

        A failed field later done (a retry that worked) is updated to done.
        """
        status = "failed" if failed else "done"
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO fields VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, sample_id, fov) DO UPDATE SET"
                " cell_count=excluded.cell_count, status=excluded.status, reason=excluded.reason"
                " WHERE fields.status='failed' AND excluded.status='done'",
                (run_id, sample_id, fov, None if failed else cell_count, status, reason),
            )
            return cursor.rowcount > 0

    def add_results(
        self,
        run_id: str,
        results: Iterable[CellResult],
        thumbnails: Mapping[CellKey, bytes] | None = None,
    ) -> int:
        """Store results (and optional PNG thumbnails) in one transaction; how many were new."""
        thumbnails = thumbnails or {}
        rows = [
            (
                run_id, *r.key, r.cell_class.value, json.dumps(list(r.probabilities)),
                json.dumps([list(h) for h in r.head_probabilities]), float(r.disagreement),
                int(r.flagged), r.flag_reason, *(int(v) for v in r.bbox), thumbnails.get(r.key),
            )
            for r in results
        ]  # fmt: skip
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return db.total_changes - before

    def set_thumbnails(self, run_id: str, thumbnails: Mapping[CellKey, bytes]) -> None:
        """Attach PNG thumbnails to stored cells (cells not stored yet are skipped)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE cells SET thumbnail=? WHERE run_id=? AND sample_id=? AND fov=?"
                " AND cell_index=?",
                [(png, run_id, *key) for key, png in thumbnails.items()],
            )

    def thumbnail(self, run_id: str, key: CellKey) -> bytes | None:
        """The PNG thumbnail of a cell, if stored."""
        rows = self._query(
            "SELECT thumbnail FROM cells WHERE run_id=? AND sample_id=? AND fov=? AND cell_index=?",
            (run_id, *key),
        )
        return bytes(rows[0]["thumbnail"]) if rows and rows[0]["thumbnail"] is not None else None

    def finish_sample(self, run_id: str, summary: SampleSummary) -> None:
        """Record a sample's final (or latest) summary figures and status (started or not)."""
        done = summary.status != SampleStatus.RUNNING
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO samples (run_id, sample_id, started_s) VALUES (?, ?, ?)",
                (run_id, summary.sample_id, time.time()),
            )
            db.execute(
                "UPDATE samples SET status=?, reason=?, fields_done=?, fields_failed=?,"
                " cells_counted=?, cells_flagged=?, elapsed_s=?, timings=?,"
                " finished_s=CASE WHEN ? THEN ? ELSE finished_s END,"
                " fields_total=COALESCE(fields_total, ?) WHERE run_id=? AND sample_id=?",
                (summary.status.value, summary.status_reason, summary.fields_done,
                 summary.fields_failed, summary.cells_counted, summary.cells_flagged,
                 summary.elapsed_s, json.dumps(summary.timings), done, time.time(),
                 summary.fields_total, run_id, summary.sample_id),
            )  # fmt: skip

    def samples(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Sample rows (of one run, or all), in start order."""
        where, params = ("WHERE run_id=?", (run_id,)) if run_id else ("", ())
        rows = self._query(f"SELECT * FROM samples {where} ORDER BY started_s, sample_id", params)
        return [{**dict(r), "timings": json.loads(r["timings"])} for r in rows]

    # -- reading back -------------------------------------------------------------------------

    def _sample_row(self, run_id: str, sample_id: str) -> sqlite3.Row:
        rows = self._query(
            "SELECT * FROM samples WHERE run_id=? AND sample_id=?", (run_id, sample_id)
        )
        if not rows:
            raise StorageError(f"{self.path}: no sample {sample_id!r} in run {run_id!r}")
        return rows[0]

    def progress(self, run_id: str, sample_id: str) -> SampleProgress:
        """Fields done/failed and cells known for a sample (to resume it)."""
        row = self._sample_row(run_id, sample_id)
        progress = SampleProgress(
            run_id=run_id,
            sample_id=sample_id,
            status=SampleStatus(row["status"]),
            reason=row["reason"],
            target_cells=row["target_cells"],
            fields_total=row["fields_total"],
            simulated=_simulated(row),
        )
        for f in self._query(
            "SELECT fov, cell_count, status, reason FROM fields WHERE run_id=? AND sample_id=?",
            (run_id, sample_id),
        ):
            if f["status"] == "done":
                progress.fields_done[f["fov"]] = f["cell_count"]
            else:
                progress.fields_failed[f["fov"]] = f["reason"]
        progress.cell_keys = {
            CellKey(sample_id, r["fov"], r["cell_index"])
            for r in self._query(
                "SELECT fov, cell_index FROM cells WHERE run_id=? AND sample_id=?",
                (run_id, sample_id),
            )
        }
        return progress

    @staticmethod
    def _result(row: sqlite3.Row) -> CellResult:
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

    def results(self, run_id: str, sample_id: str) -> list[CellResult]:
        """Every stored result of a sample, in (fov, cell_index) order."""
        try:
            return [
                self._result(r)
                for r in self._query(
                    "SELECT * FROM cells WHERE run_id=? AND sample_id=? ORDER BY fov, cell_index",
                    (run_id, sample_id),
                )
            ]
        except (ValueError, TypeError) as exc:
            raise StorageError(f"{self.path}: corrupt cell row for {sample_id!r}: {exc}") from None

    def ledger(self, run_id: str, sample_id: str) -> SampleLedger:
        """The sample's ledger rebuilt from the store (what an aggregator resumes from)."""
        progress = self.progress(run_id, sample_id)
        ledger = SampleLedger(
            sample_id, target_cells=progress.target_cells, simulated=progress.simulated
        )
        for fov, count in sorted(progress.fields_done.items()):
            ledger.set_cell_count(fov, count)
        for fov, reason in sorted(progress.fields_failed.items()):
            ledger.fail_field(fov, reason)
        ledger.add_results(self.results(run_id, sample_id))
        if progress.fields_total is not None:
            ledger.end(progress.fields_total)
        return ledger

    def _aborted(self, run_id: str, sample_id: str) -> str:
        row = self._sample_row(run_id, sample_id)
        return str(row["reason"] or "") if row["status"] == SampleStatus.INCOMPLETE.value else ""

    def counted_results(self, run_id: str, sample_id: str) -> list[CellResult]:
        """The cells behind `summary()`, in (fov, cell_index) order (the report's gallery)."""
        return differential_cells(self.ledger(run_id, sample_id), self._aborted(run_id, sample_id))

    def summary(self, run_id: str, sample_id: str) -> SampleSummary:
        """The sample's summary, recomputed from its stored fields and cells by counts.py."""
        row = self._sample_row(run_id, sample_id)
        return summarize(
            self.ledger(run_id, sample_id),
            aborted=self._aborted(run_id, sample_id),
            elapsed_s=row["elapsed_s"],
            timings=json.loads(row["timings"]),
        )

    # -- export -------------------------------------------------------------------------------

    def _cell_rows(self, run_id: str | None, sample_id: str | None) -> list[sqlite3.Row]:
        clauses, params = [], []
        for column, value in (("run_id", run_id), ("sample_id", sample_id)):
            if value is not None:
                clauses.append(f"{column}=?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._query(
            f"SELECT * FROM cells {where} ORDER BY run_id, sample_id, fov, cell_index",
            tuple(params),
        )

    def export_csv(
        self, path: Path | str, run_id: str | None = None, sample_id: str | None = None
    ) -> int:
        """Write one row per cell (columns `CSV_COLUMNS`); how many rows."""
        rows = self._cell_rows(run_id, sample_id)
        simulated = {
            (s["run_id"], s["sample_id"]): _csv_simulated(s.get("simulated"))
            for s in self.samples(run_id)
        }
        with Path(path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for row in rows:
                result = self._result(row)
                writer.writerow(
                    [row["run_id"], *result.key, result.cell_class.value, result.label,
                     int(result.flagged), result.flag_reason, result.disagreement,
                     *result.probabilities, *result.bbox,
                     simulated.get((row["run_id"], result.key.sample_id), "unknown")]
                )  # fmt: skip
        return len(rows)

    def export_json(
        self, path: Path | str, run_id: str | None = None, sample_id: str | None = None
    ) -> None:
        """Write runs, samples (with their summaries) and cells as one JSON document."""
        runs = [r for r in self.runs() if run_id is None or r["run_id"] == run_id]
        document: dict[str, Any] = {"schema": SCHEMA_VERSION, "runs": []}
        for run in runs:
            samples = [
                s
                for s in self.samples(run["run_id"])
                if sample_id is None or s["sample_id"] == sample_id
            ]
            entries = []
            for sample in samples:
                summary = self.summary(run["run_id"], sample["sample_id"])
                cells = [
                    {
                        "fov": r.key.fov,
                        "cell_index": r.key.cell_index,
                        "cell_class": r.cell_class.value,
                        "label": r.label,
                        "probabilities": list(r.probabilities),
                        "head_probabilities": [list(h) for h in r.head_probabilities],
                        "disagreement": r.disagreement,
                        "flagged": r.flagged,
                        "flag_reason": r.flag_reason,
                        "bbox": list(r.bbox),
                    }
                    for r in self.results(run["run_id"], sample["sample_id"])
                ]
                entries.append(
                    {**sample, "summary": summary.model_dump(mode="json"), "cells": cells}
                )
            document["runs"].append({**run, "samples": entries})
        Path(path).write_text(json.dumps(document, indent=1), encoding="utf-8")
