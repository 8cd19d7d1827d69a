"""The LIS tables beside the results (orders, refused input, outbox) and one connection to them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from leukoscope.errors import ParameterError, StorageError
from leukoscope.results import connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS lis_orders (
    accession TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    patient_authority TEXT NOT NULL DEFAULT '',
    family_name TEXT NOT NULL DEFAULT '',
    given_name TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT '',
    placer_order TEXT NOT NULL DEFAULT '',
    test_code TEXT NOT NULL,
    test_name TEXT NOT NULL,
    test_system TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    source TEXT NOT NULL,
    control_id TEXT NOT NULL DEFAULT '',
    received_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lis_rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_s REAL NOT NULL,
    door TEXT NOT NULL,
    source TEXT NOT NULL,
    error TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lis_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    release_no INTEGER NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('hl7', 'fhir')),
    control_id TEXT NOT NULL,
    message TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'sent', 'failed', 'refused', 'superseded')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_s REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    ack TEXT NOT NULL DEFAULT '',
    queued_s REAL NOT NULL,
    sent_s REAL,
    UNIQUE (run_id, sample_id, release_no, channel)
);
"""
RAW_LIMIT = 65536  # characters of a refused input kept for the lab to see


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """A connection to the results database `path` with the LIS tables (autocommit: writers
    open their own `BEGIN IMMEDIATE`). `create`: make a new results database if there is none."""
    if not Path(path).is_file():
        if not create:
            raise ParameterError(f"results database {path} not found (pass --db)")
        from leukoscope.results.store import ResultStore

        ResultStore(path).close()
    try:
        db = connection.connect(path, autocommit=True)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open the LIS tables: {exc}") from None
    return db


def has_table(db: sqlite3.Connection, name: str) -> bool:
    """True when the database holds table `name`."""
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None
