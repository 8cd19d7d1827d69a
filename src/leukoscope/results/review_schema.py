"""The review tables of the results database (what they hold: `results/review_store.py`), the labels a
review cell may carry, and the SQL guards that keep the review append-only. Made by the schema-5
migration (`migrations.py`; schema 6 widened the labels to the further classes), never on open.
"""

from __future__ import annotations

import sqlite3

from leukoscope.results.schema import execute_script
from leukoscope.types import NOT_WHITE, CellClass

ARTEFACT = "ARTEFACT"
"""Not a white cell (debris, platelet clump, stain): leaves the count."""
SMUDGE = "SMUDGE"
"""A white cell that cannot be classified (smudge, damaged): leaves the 5-part differential."""
UNIDENTIFIED_LABEL = "UNIDENTIFIED"
"""A cell the model's open-set score set apart: in no class until a reviewer gives it one."""
WHITE_CLASSES: tuple[str, ...] = tuple(c.value for c in CellClass if c not in NOT_WHITE)
"""The white-cell classes a reviewed differential counts: the five, then IG, BLAST and RL (a lab's
further classes; the review page offers those of the run's model)."""
LABELS: tuple[str, ...] = (*(c.value for c in CellClass), ARTEFACT, SMUDGE)
"""What a reviewer may give a cell (NRBC: a nucleated red cell, counted beside the differential)."""
STORED_LABELS: tuple[str, ...] = (*LABELS, UNIDENTIFIED_LABEL)
"""What a review cell's label may be (a reviewer never sets UNIDENTIFIED; the model does)."""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS review_samples (
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'released')),
    version INTEGER NOT NULL DEFAULT 0,
    opened_s REAL NOT NULL,
    reviewer TEXT NOT NULL DEFAULT '',
    released_s REAL,
    release_kind TEXT NOT NULL DEFAULT '',
    release_reason TEXT NOT NULL DEFAULT '',
    releases INTEGER NOT NULL DEFAULT 0,
    submitted_by TEXT NOT NULL DEFAULT '',
    submitted_kind TEXT NOT NULL DEFAULT '',
    submitted_reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, sample_id)
);
CREATE TABLE IF NOT EXISTS review_releases (
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    release_no INTEGER NOT NULL CHECK (release_no >= 1),
    kind TEXT NOT NULL CHECK (kind IN ('final', 'partial')),
    reason TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    verified_by TEXT NOT NULL DEFAULT '',
    released_s REAL NOT NULL,
    model_sha256 TEXT NOT NULL,
    rig_digest TEXT NOT NULL,
    validation_id INTEGER NOT NULL,
    differential TEXT NOT NULL,
    chain_head TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, sample_id, release_no)
);
CREATE TRIGGER IF NOT EXISTS review_releases_no_update BEFORE UPDATE ON review_releases
BEGIN SELECT RAISE(ABORT, 'review_releases keeps every released version'); END;
CREATE TRIGGER IF NOT EXISTS review_releases_no_delete BEFORE DELETE ON review_releases
BEGIN SELECT RAISE(ABORT, 'review_releases keeps every released version'); END;
CREATE TABLE IF NOT EXISTS review_cells (
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    fov INTEGER NOT NULL,
    cell_index INTEGER NOT NULL,
    original TEXT NOT NULL,
    label TEXT NOT NULL CHECK (label IN ({", ".join(repr(x) for x in STORED_LABELS)})),
    flagged INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, sample_id, fov, cell_index)
);
CREATE TABLE IF NOT EXISTS review_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    fov INTEGER,
    cell_index INTEGER,
    action TEXT NOT NULL CHECK (action IN ('reclassify', 'release', 'reopen', 'comment')),
    from_label TEXT NOT NULL,
    to_label TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    time_s REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL DEFAULT '',
    row_hash TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS review_audit_no_update BEFORE UPDATE ON review_audit
BEGIN SELECT RAISE(ABORT, 'review_audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS review_audit_no_delete BEFORE DELETE ON review_audit
BEGIN SELECT RAISE(ABORT, 'review_audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS review_cells_locked BEFORE UPDATE ON review_cells
WHEN (SELECT state FROM review_samples s WHERE s.run_id = OLD.run_id
      AND s.sample_id = OLD.sample_id) = 'released'
BEGIN SELECT RAISE(ABORT, 'sample is released'); END;
CREATE VIEW IF NOT EXISTS review_counted_cells AS
    SELECT run_id, sample_id, fov, cell_index, label AS cell_class, original AS original_class
    FROM review_cells WHERE label IN ({", ".join(repr(name) for name in WHITE_CLASSES)});
"""

REVIEW_SAMPLE_COLUMNS = {
    "release_kind": "TEXT NOT NULL DEFAULT ''",
    "release_reason": "TEXT NOT NULL DEFAULT ''",
    "releases": "INTEGER NOT NULL DEFAULT 0",
    "submitted_by": "TEXT NOT NULL DEFAULT ''",
    "submitted_kind": "TEXT NOT NULL DEFAULT ''",
    "submitted_reason": "TEXT NOT NULL DEFAULT ''",
}
"""Columns of `review_samples` added since its first version (added in place by the migration)."""

ADDED_COLUMNS = {
    "review_samples": REVIEW_SAMPLE_COLUMNS,
    "review_audit": {
        "prev_hash": "TEXT NOT NULL DEFAULT ''",
        "row_hash": "TEXT NOT NULL DEFAULT ''",
    },
}
"""Columns added to the review tables since their first version, per table."""

GUARDS = """
CREATE TRIGGER IF NOT EXISTS review_audit_chained BEFORE INSERT ON review_audit
WHEN length(NEW.row_hash) != 64 OR length(NEW.prev_hash) != 64
BEGIN SELECT RAISE(ABORT, 'review_audit rows are hash-chained (prev_hash, row_hash)'); END;
CREATE TRIGGER IF NOT EXISTS review_audit_no_replace BEFORE INSERT ON review_audit
WHEN EXISTS (SELECT 1 FROM review_audit WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'review_audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS review_cells_no_delete BEFORE DELETE ON review_cells
BEGIN SELECT RAISE(ABORT, 'review_cells rows are never removed'); END;
CREATE TRIGGER IF NOT EXISTS review_cells_no_replace BEFORE INSERT ON review_cells
WHEN EXISTS (SELECT 1 FROM review_cells c WHERE c.run_id = NEW.run_id
             AND c.sample_id = NEW.sample_id AND c.fov = NEW.fov
             AND c.cell_index = NEW.cell_index)
BEGIN SELECT RAISE(ABORT, 'review_cells rows change only through a reclassification'); END;
CREATE TRIGGER IF NOT EXISTS review_cells_original_fixed BEFORE UPDATE OF original, flagged
ON review_cells
BEGIN SELECT RAISE(ABORT, 'review_cells keeps the classifier''s class and flag'); END;
CREATE TRIGGER IF NOT EXISTS review_samples_no_delete BEFORE DELETE ON review_samples
BEGIN SELECT RAISE(ABORT, 'review_samples rows are never removed'); END;
CREATE TRIGGER IF NOT EXISTS review_samples_no_replace BEFORE INSERT ON review_samples
WHEN EXISTS (SELECT 1 FROM review_samples s WHERE s.run_id = NEW.run_id
             AND s.sample_id = NEW.sample_id)
BEGIN SELECT RAISE(ABORT, 'review_samples rows change only through the review'); END;
CREATE TRIGGER IF NOT EXISTS review_releases_no_replace BEFORE INSERT ON review_releases
WHEN EXISTS (SELECT 1 FROM review_releases r WHERE r.run_id = NEW.run_id
             AND r.sample_id = NEW.sample_id AND r.release_no = NEW.release_no)
BEGIN SELECT RAISE(ABORT, 'review_releases keeps every released version'); END;
"""
"""Every write path of the review tables that is not the review's own: REPLACE (which deletes
without firing DELETE triggers), DELETE, and unchained audit rows, refused in SQL. The checks
against the audit replay (chain.py) find the rest."""

USERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_users (
    name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_s REAL NOT NULL,
    changed_s REAL NOT NULL
);
"""
"""The review page's local accounts (review/accounts.py): names unique regardless of case,
Argon2id password hashes; `changed_s` moves with every password reset, disabling and enabling."""
SCHEMA += USERS_SCHEMA


def table_sql(db: sqlite3.Connection, table: str) -> str:
    """The CREATE statement a table was made with ('' when there is none)."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,))
    found = row.fetchone()
    return str(found[0]) if found and found[0] else ""


def widen_labels(db: sqlite3.Connection) -> None:
    """Rebuild `review_cells` with the label CHECK of this version, rows unchanged, inside the
    caller's transaction (its triggers go with the old table; the caller runs SCHEMA and GUARDS
    again)."""
    db.execute("DROP VIEW IF EXISTS review_counted_cells")
    db.execute("ALTER TABLE review_cells RENAME TO review_cells_before")
    execute_script(db, SCHEMA)
    db.execute("INSERT INTO review_cells SELECT * FROM review_cells_before")
    db.execute("DROP TABLE review_cells_before")


def widen_actions(db: sqlite3.Connection) -> None:
    """Rebuild `review_audit` with the action CHECK of this version ('comment' added), rows and
    their hashes unchanged, inside the caller's transaction (its triggers go with the old table;
    the caller runs SCHEMA and GUARDS again)."""
    db.execute("ALTER TABLE review_audit RENAME TO review_audit_before")
    execute_script(db, SCHEMA)
    db.execute("INSERT INTO review_audit SELECT * FROM review_audit_before")
    db.execute("DROP TABLE review_audit_before")
