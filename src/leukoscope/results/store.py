"""Results in SQLite (WAL): runs, samples, fields and cells; resume, summaries, counted cells.

Every insert is idempotent by its key (a cell by (run, sample, fov, cell_index)), so replaying a
stream after a crash stores each cell once. Thread-safety: one `ResultStore` holds one connection,
guarded by a lock, usable from any thread; other processes open their own `ResultStore` on the same
file (WAL lets readers run beside the writer). Counting is never done here: summaries are rebuilt
through `ledger.SampleLedger` and `counts.summarize`, and `finish_sample` marks the cells they count
(`cells.counted`, the `counted_cells` view). The schema and its migrations are in `schema.py`,
reading a sample back in `reads.py`, typed rows in `records.py`, the tables a user lists
or exports in `tables.py`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from leukoscope.errors import StorageError
from leukoscope.results import interrupted, reads
from leukoscope.results.connection import connect
from leukoscope.results.counts import differential_cells, summarize
from leukoscope.results.ledger import SampleLedger
from leukoscope.results.migrations import migrate
from leukoscope.results.reads import SampleProgress
from leukoscope.results.records import Producer, RunRecord, SampleRecord
from leukoscope.results.schema import (
    CELL_INSERT,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    read_version,
)
from leukoscope.types import CellKey, CellResult, SampleStatus, SampleSummary

__all__ = [
    "SCHEMA_VERSION",
    "Producer",
    "ResultStore",
    "RunRecord",
    "SampleProgress",
    "SampleRecord",
]


class ResultStore:
    """A results database file; use as a context manager or call `close()`."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.read_only = read_only
        self.schema_version = SCHEMA_VERSION  # a read-only open of an older file says which
        if read_only:
            self._db = self._open_read_only()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"{self.path}: cannot open results database: {exc}") from None
        try:
            self._init_schema()
        except BaseException:
            self._db.close()
            raise

    def _open_read_only(self) -> sqlite3.Connection:
        """Open for reading only, also on read-only media (`connection.connect`); the schema is
        checked, not migrated."""
        try:
            db = connect(self.path, read_only=True)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open results database: {exc}") from None
        db.row_factory = sqlite3.Row
        try:
            version = read_version(db)
        except sqlite3.Error as exc:
            db.close()
            raise StorageError(f"{self.path}: cannot open results database: {exc}") from None
        if version not in READABLE_VERSIONS:
            db.close()
            raise StorageError(
                f"{self.path}: results schema {version or 'none'}, this build reads "
                f"{SCHEMA_VERSION}"
            )
        self.schema_version = int(version)
        return db

    def _init_schema(self) -> None:
        db = self._db
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            found = migrate(db, self.path)
            interrupted.mark_interrupted(db, found in READABLE_VERSIONS)  # runs killed, not ended
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open results database: {exc}") from None
        if found not in READABLE_VERSIONS:
            raise StorageError(
                f"{self.path}: results schema {found}, this build reads {SCHEMA_VERSION}"
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
        """Record a run (a new id unless given; an existing id is resumed, its interrupted samples
        running again); its id."""
        run_id = run_id or uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                interrupted.RUN_INSERT,  # a resumed run is this process's now
                (run_id, time.time() if started_s is None else started_s, model_path,
                 model_version, config_digest, *interrupted.this_process()),
            )  # fmt: skip
            interrupted.take_up(db, run_id)
        return run_id

    def finish_run(self, run_id: str, finished_s: float | None = None) -> None:
        """Mark a run finished."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET finished_s=? WHERE run_id=?",
                (time.time() if finished_s is None else finished_s, run_id),
            )

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        rows = self._query("SELECT * FROM runs ORDER BY started_s, run_id")
        return [RunRecord.from_row(r) for r in rows]

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

    def note_rig(
        self, run_id: str, sample_id: str, pixel_size_um: float, settings_digest: str
    ) -> None:
        """The rig set-up of a field of the sample: the first is kept; another one leaves the
        digest '' (mixed: bound to no validation)."""
        with self._tx() as db:
            db.execute(
                "UPDATE samples SET pixel_size_um=?, settings_digest=? WHERE run_id=?"
                " AND sample_id=? AND settings_digest IS NULL",
                (pixel_size_um, settings_digest, run_id, sample_id),
            )
            db.execute(
                "UPDATE samples SET settings_digest='' WHERE run_id=? AND sample_id=?"
                " AND (settings_digest != ? OR abs(pixel_size_um - ?) > 1e-6)",
                (run_id, sample_id, settings_digest, pixel_size_um),
            )

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
        worker: Producer | None = None,
        quality: tuple[float | None, tuple[str, ...]] = (None, ()),
    ) -> bool:
        """Record a field as done (with its cell count, focus measure and quality notes) or
        failed, and the worker that segmented it or gave up on it ('' when none did); False if
        already recorded.

        A failed field later done (a retry that worked) is updated to done.
        """
        status = "failed" if failed else "done"
        worker = worker or Producer()
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO fields (run_id, sample_id, fov, cell_count, status, reason, worker,"
                " worker_key, focus, quality_notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, sample_id, fov)"
                " DO UPDATE SET cell_count=excluded.cell_count, status=excluded.status,"
                " reason=excluded.reason, worker=excluded.worker, worker_key=excluded.worker_key,"
                " focus=excluded.focus, quality_notes=excluded.quality_notes"
                " WHERE fields.status='failed' AND excluded.status='done'",
                (run_id, sample_id, fov, None if failed else cell_count, status, reason,
                 worker.name, worker.key, quality[0], ",".join(quality[1])),
            )  # fmt: skip
            return cursor.rowcount > 0

    def add_results(
        self,
        run_id: str,
        results: Iterable[CellResult],
        thumbnails: Mapping[CellKey, bytes] | None = None,
        worker: Producer | None = None,
    ) -> int:
        """Store results (and optional PNG thumbnails) in one transaction, with the worker that
        classified them; how many were new."""
        thumbnails = thumbnails or {}
        worker = worker or Producer()
        rows = [
            (
                run_id, *r.key, r.cell_class.value, json.dumps(list(r.probabilities)),
                json.dumps([list(h) for h in r.head_probabilities]), float(r.disagreement),
                int(r.flagged), r.flag_reason, *(int(v) for v in r.bbox), thumbnails.get(r.key),
                worker.name, worker.key,
            )
            for r in results
        ]  # fmt: skip
        with self._tx() as db:
            before = db.total_changes
            db.executemany(CELL_INSERT, rows)
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
        """Record a sample's final (or latest) summary figures and status (started or not), and
        mark which of its stored cells the differential counts (`cells.counted`)."""
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
            reads.mark_counted(db, self.path, run_id, summary.sample_id)

    def samples(self, run_id: str | None = None) -> list[SampleRecord]:
        """Sample rows (of one run, or all), in start order."""
        where, params = ("WHERE run_id=?", (run_id,)) if run_id else ("", ())
        rows = self._query(f"SELECT * FROM samples {where} ORDER BY started_s, sample_id", params)
        try:
            return [SampleRecord.from_row(r) for r in rows]
        except (ValueError, TypeError, KeyError) as exc:
            raise StorageError(f"{self.path}: corrupt sample row: {exc}") from None

    # -- reading back -------------------------------------------------------------------------

    def progress(self, run_id: str, sample_id: str) -> SampleProgress:
        """Fields done/failed and cells known for a sample (to resume it)."""
        with self._tx() as db:
            return reads.progress(db, self.path, run_id, sample_id)

    def results(self, run_id: str, sample_id: str) -> list[CellResult]:
        """Every stored result of a sample, in (fov, cell_index) order."""
        with self._tx() as db:
            return reads.results(db, self.path, run_id, sample_id)

    def ledger(self, run_id: str, sample_id: str) -> SampleLedger:
        """The sample's ledger rebuilt from the store (what an aggregator resumes from)."""
        with self._tx() as db:
            return reads.ledger(db, self.path, run_id, sample_id)

    def counted_results(self, run_id: str, sample_id: str) -> list[CellResult]:
        """The cells behind `summary()`, in (fov, cell_index) order (the report's gallery)."""
        with self._tx() as db:
            why = reads.aborted(reads.sample_row(db, self.path, run_id, sample_id))
            return differential_cells(reads.ledger(db, self.path, run_id, sample_id), why)

    def summary(self, run_id: str, sample_id: str) -> SampleSummary:
        """The sample's summary, recomputed from its stored fields and cells by counts.py."""
        with self._tx() as db:
            row = reads.sample_row(db, self.path, run_id, sample_id)
            return summarize(
                reads.ledger(db, self.path, run_id, sample_id),
                aborted=reads.aborted(row),
                elapsed_s=row["elapsed_s"],
                timings=json.loads(row["timings"]),
            )

    def counted_keys(self, run_id: str, sample_id: str) -> set[CellKey] | None:
        """The keys of the cells the finished differential counts (None while running), decided
        by counts.py as for `summary()`: what `cells.counted` records."""
        with self._tx() as db:
            return reads.counted_keys(db, self.path, run_id, sample_id)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of one SELECT (the views and tables readers list and export)."""
        return self._query(sql, params)
