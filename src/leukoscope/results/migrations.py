"""The results database's migrations: a file of an older schema is brought to `SCHEMA_VERSION` in
place, in one transaction, when it is opened read-write (by the result store or for review).

1 -> 2 -> 3 -> 4 add columns and views to the pipeline's tables (`schema.py`); 4 -> 5 makes the
review tables (`review_schema.py`); 5 -> 6 lets a review cell carry the further white-cell classes
(IG, BLAST, RL); 6 -> 7 gives the cell views a probability column per further class. A new file is
made at `schema.BASE_VERSION` and migrated like any other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from leukoscope.results import reads
from leukoscope.results.audit_chain import chain_existing
from leukoscope.results.review_schema import (
    ADDED_COLUMNS,
    GUARDS,
    table_sql,
    widen_actions,
    widen_labels,
)
from leukoscope.results.review_schema import SCHEMA as REVIEW_SCHEMA
from leukoscope.results.schema import BASE_VERSION, SCHEMA_VERSION, TABLES, VIEWS, execute_script

Backfill = Callable[[sqlite3.Connection], None]


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Add `samples.simulated`, NULL (not recorded) for the samples already there."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(samples)")}
    if "simulated" not in columns:
        db.execute("ALTER TABLE samples ADD COLUMN simulated INTEGER")


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    """Add `cells.counted` (filled by the caller's backfill) and the views."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(cells)")}
    if "counted" not in columns:
        db.execute("ALTER TABLE cells ADD COLUMN counted INTEGER")


def _migrate_3_to_4(db: sqlite3.Connection) -> None:
    """Add the rig set-up and the worker columns, NULL (not recorded) for the rows already there;
    the cell views are made again with the worker columns."""
    added = {
        "runs": (("pid", "INTEGER"), ("host", "TEXT")),
        "samples": (("pixel_size_um", "REAL"), ("settings_digest", "TEXT")),
        "fields": (
            ("worker", "TEXT"),
            ("worker_key", "TEXT"),
            ("focus", "REAL"),
            ("quality_notes", "TEXT"),
        ),
        "cells": (("worker", "TEXT"), ("worker_key", "TEXT")),
    }
    for table, new in added.items():
        columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in new:
            if name not in columns:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    db.execute("DROP VIEW IF EXISTS counted_cells")
    db.execute("DROP VIEW IF EXISTS cell_list")


def _migrate_4_to_5(db: sqlite3.Connection) -> None:
    """Make the review tables. A file a review opened before holds them already, maybe of an
    older layout: their newer columns are added (audit rows written before the hash chain are
    chained once, in id order), a `review_cells` without the UNIDENTIFIED label and a
    `review_audit` without comments are rebuilt with their rows; then the SQL guards."""
    execute_script(db, REVIEW_SCHEMA)
    unchained = False
    for table, columns in ADDED_COLUMNS.items():
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                unchained |= name == "row_hash"
    if unchained and db.execute("SELECT 1 FROM review_audit LIMIT 1").fetchone():
        chain_existing(db)
        execute_script(db, REVIEW_SCHEMA)  # the append-only triggers again
    if "UNIDENTIFIED" not in table_sql(db, "review_cells"):
        widen_labels(db)
        execute_script(db, REVIEW_SCHEMA)
    if "'comment'" not in table_sql(db, "review_audit"):
        widen_actions(db)
        execute_script(db, REVIEW_SCHEMA)
    execute_script(db, GUARDS)


def _migrate_5_to_6(db: sqlite3.Connection) -> None:
    """Rebuild `review_cells` with the labels of the further white-cell classes, rows unchanged,
    and the view of the counted cells with them; then the SQL guards."""
    if "'IG'" not in table_sql(db, "review_cells"):
        widen_labels(db)
    db.execute("DROP VIEW IF EXISTS review_counted_cells")
    execute_script(db, REVIEW_SCHEMA)
    execute_script(db, GUARDS)


def _migrate_6_to_7(db: sqlite3.Connection) -> None:
    """Drop the cell views; they are made again with a probability column per further class."""
    db.execute("DROP VIEW IF EXISTS counted_cells")
    db.execute("DROP VIEW IF EXISTS cell_list")


_MIGRATIONS = {
    "1": (_migrate_1_to_2, "2"),
    "2": (_migrate_2_to_3, "3"),
    "3": (_migrate_3_to_4, "4"),
    "4": (_migrate_4_to_5, "5"),
    "5": (_migrate_5_to_6, "6"),
    "6": (_migrate_6_to_7, "7"),
}


def create_or_migrate(db: sqlite3.Connection, backfill_counted: Backfill) -> str:
    """Create the schema, or migrate an older one to `SCHEMA_VERSION`, in one transaction; the
    version found (`SCHEMA_VERSION` for a new file; an unknown one is left untouched for the
    caller to refuse)."""
    with db:
        db.execute("BEGIN")
        execute_script(db, TABLES)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (BASE_VERSION,))
            found, recorded = str(SCHEMA_VERSION), BASE_VERSION
        else:
            found = recorded = str(row[0])
        version = recorded
        while version in _MIGRATIONS:
            migrate, version = _MIGRATIONS[version]
            migrate(db)
        if version == str(SCHEMA_VERSION):
            execute_script(db, VIEWS)
            if found in ("1", "2"):
                backfill_counted(db)
            if recorded != version:
                db.execute("UPDATE meta SET value=? WHERE key='schema'", (version,))
    return found


def migrate(db: sqlite3.Connection, path: Path) -> str:
    """`create_or_migrate` for the results database at `path` (cells of a schema-1/2 file are
    marked counted as `counts.py` decides); the version found."""
    return create_or_migrate(db, lambda d: reads.mark_all_counted(d, path))
