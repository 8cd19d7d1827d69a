"""Model validations in the lab's results database: the evidence a model's results may be released.

`leukoscope validate` appends one row per run to the table `model_validations` (created on first
write; append-only: triggers refuse UPDATE and DELETE). A record is bound to the model file's SHA-256
and to the rig set-up of the acquisitions it was run on (`rig_identity.rig_digest`); only a PASS on
real (not simulated) acquisitions counts (`ValidationRecord.passing`). Readers of a database without
the table get no records.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from leukoscope.errors import ParameterError, StorageError
from leukoscope.results.connection import connect

TABLE = "model_validations"
VERDICTS = ("PASS", "FAIL")
_SHA256 = re.compile(r"sha256:([0-9a-f]{64})\b")
_HEX64 = re.compile(r"[0-9a-f]{64}")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_sha256 TEXT NOT NULL,
    rig_digest TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('PASS', 'FAIL')),
    simulated INTEGER NOT NULL CHECK (simulated IN (0, 1)),
    created_s REAL NOT NULL,
    validated_by TEXT NOT NULL,
    samples INTEGER NOT NULL,
    cells INTEGER NOT NULL,
    accuracy REAL NOT NULL,
    segmentation_recall REAL NOT NULL,
    largest_bias_pp REAL NOT NULL,
    largest_bias_class TEXT NOT NULL,
    model_path TEXT NOT NULL,
    failed TEXT NOT NULL DEFAULT '[]',
    report TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS {TABLE}_model_rig ON {TABLE} (model_sha256, rig_digest);
CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: a validation record cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: a validation record cannot be deleted'); END;
"""

_COLUMNS = (
    "id, model_sha256, rig_digest, verdict, simulated, created_s, validated_by, samples, cells, "
    "accuracy, segmentation_recall, largest_bias_pp, largest_bias_class, model_path, failed, report"
)


@dataclass(frozen=True)
class ValidationRecord:
    """One `validate` run of a model on one rig set-up, as stored (`id` 0: not yet stored)."""

    id: int
    model_sha256: str
    rig_digest: str
    verdict: str  # "PASS" | "FAIL"
    simulated: bool
    created_s: float
    validated_by: str
    samples: int
    cells: int
    accuracy: float
    segmentation_recall: float
    largest_bias_pp: float
    largest_bias_class: str
    model_path: str
    failed: tuple[str, ...]
    report: str  # the validation.json it was written with

    @property
    def passing(self) -> bool:
        """A PASS on real acquisitions: the only kind of record that lets results be released."""
        return self.verdict == "PASS" and not self.simulated


def model_sha256_of(model_version: str) -> str:
    """The SHA-256 in a run's `model_version` (`... sha256:<64 hex>`); "" if it has none."""
    found = _SHA256.search(model_version or "")
    return found.group(1) if found else ""


def _check(record: ValidationRecord) -> None:
    if not _HEX64.fullmatch(record.model_sha256):
        raise ParameterError(f"model SHA-256 {record.model_sha256!r} is not 64 lower-case hex")
    if record.verdict not in VERDICTS:
        raise ParameterError(f"verdict {record.verdict!r}: expected PASS or FAIL")
    if not record.rig_digest:
        raise ParameterError("a validation record needs the rig digest of its acquisitions")


def record_validation(database: Path, record: ValidationRecord) -> ValidationRecord:
    """Append `record` to `database` (table created if missing); the record with its new id."""
    _check(record)
    database = Path(database)
    if not database.exists():  # a new lab database: a proper results store, then the table
        from leukoscope.results.store import ResultStore

        ResultStore(database).close()
    row = (
        record.model_sha256,
        record.rig_digest,
        record.verdict,
        int(record.simulated),
        float(record.created_s),
        record.validated_by,
        int(record.samples),
        int(record.cells),
        float(record.accuracy),
        float(record.segmentation_recall),
        float(record.largest_bias_pp),
        record.largest_bias_class,
        record.model_path,
        json.dumps(list(record.failed)),
        record.report,
    )
    try:
        db = connect(database)
    except sqlite3.Error as exc:
        raise StorageError(f"{database}: cannot open results database: {exc}") from None
    try:
        with db:
            db.executescript(SCHEMA)
        with db:
            cursor = db.execute(
                f"INSERT INTO {TABLE} ({_COLUMNS.split(', ', 1)[1]}) "
                f"VALUES ({', '.join('?' * len(row))})",
                row,
            )
            new_id = int(cursor.lastrowid or 0)
    except sqlite3.Error as exc:
        raise StorageError(f"{database}: cannot record the validation: {exc}") from None
    finally:
        db.close()
    return replace(record, id=new_id)


@contextmanager
def _reading(database: Path | sqlite3.Connection) -> Iterator[sqlite3.Connection | None]:
    """The connection given, or `database` opened read-only (immutable on read-only media);
    None when the file does not exist."""
    if isinstance(database, sqlite3.Connection):
        yield database
        return
    path = Path(database)
    if not path.is_file():
        yield None
        return
    try:
        db = connect(path, read_only=True)
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open results database: {exc}") from None
    try:
        yield db
    finally:
        db.close()


def _has_table(db: sqlite3.Connection) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,))
    return found.fetchone() is not None


def _record(row: tuple[Any, ...] | sqlite3.Row) -> ValidationRecord:
    values: tuple[Any, ...] = tuple(row)
    failed = json.loads(str(values[14]) or "[]")
    return ValidationRecord(
        id=int(values[0]),
        model_sha256=str(values[1]),
        rig_digest=str(values[2]),
        verdict=str(values[3]),
        simulated=bool(values[4]),
        created_s=float(values[5]),
        validated_by=str(values[6]),
        samples=int(values[7]),
        cells=int(values[8]),
        accuracy=float(values[9]),
        segmentation_recall=float(values[10]),
        largest_bias_pp=float(values[11]),
        largest_bias_class=str(values[12]),
        model_path=str(values[13]),
        failed=tuple(str(f) for f in failed),
        report=str(values[15]),
    )


def _select(
    database: Path | sqlite3.Connection, where: str, args: tuple[object, ...]
) -> list[ValidationRecord]:
    with _reading(database) as db:
        if db is None:
            return []
        try:
            if not _has_table(db):
                return []
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM {TABLE} {where} ORDER BY created_s, id", args
            ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the model validations: {exc}") from None
    return [_record(r) for r in rows]


def validation_records(
    database: Path | sqlite3.Connection, model_sha256: str | None = None
) -> list[ValidationRecord]:
    """Every validation record (of one model when `model_sha256` is given), oldest first."""
    if model_sha256 is None:
        return _select(database, "", ())
    return _select(database, "WHERE model_sha256 = ?", (model_sha256,))


def passing_validation(
    database: Path | sqlite3.Connection, model_sha256: str, rig_digest: str
) -> ValidationRecord | None:
    """The newest passing record (PASS, real acquisitions) of that model on that rig set-up."""
    if not model_sha256 or not rig_digest:
        return None
    found = _select(
        database,
        "WHERE model_sha256 = ? AND rig_digest = ? AND verdict = 'PASS' AND simulated = 0",
        (model_sha256, rig_digest),
    )
    return found[-1] if found else None
