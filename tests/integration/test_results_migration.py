"""The review tables are part of the results schema (version 6: 5 made them, 6 widened their labels
to the further white-cell classes): a new file has them, and a version-4 file whose review tables an
older build made when a review opened it migrates to 6 with its rows, hash chain and guards intact,
opened by the result store or for review."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore
from leukoscope.results.tables import cell_rows
from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES, CellKey, CellResult

from .review_helpers import cell_thumbnail, finished_sample

REVIEW_TABLES = (
    "review_samples",
    "review_releases",
    "review_cells",
    "review_audit",
    "review_users",
)
GUARD_TRIGGERS = (
    "review_audit_chained", "review_audit_no_delete", "review_audit_no_replace",
    "review_audit_no_update", "review_cells_locked", "review_cells_no_delete",
    "review_cells_no_replace", "review_cells_original_fixed", "review_releases_no_delete",
    "review_releases_no_replace", "review_releases_no_update", "review_samples_no_delete",
    "review_samples_no_replace",
)  # fmt: skip

SCHEMA_4_REVIEW_DDL = """
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
    label TEXT NOT NULL CHECK (label IN ('NEU', 'LYM', 'MO', 'EOS', 'BAS', 'ARTEFACT', 'SMUDGE', 'UNIDENTIFIED')),
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
    FROM review_cells WHERE label IN ('NEU', 'LYM', 'MO', 'EOS', 'BAS');

CREATE TABLE IF NOT EXISTS review_users (
    name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_s REAL NOT NULL,
    changed_s REAL NOT NULL
);

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
"""The review tables, triggers and view exactly as the build of schema 4 made them on every open
(its `executescript`), labels and classes written out."""


def _schema(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0])


def _objects(path: Path) -> dict[tuple[str, str], str]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {(kind, name): sql for kind, name, sql in rows}


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as db:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in REVIEW_TABLES}


def _as_schema_4(path: Path, ddl: str) -> None:
    """Replace the review tables with `ddl`'s, rows copied, and record schema 4."""
    rows = _rows(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("DROP VIEW review_counted_cells")
        for table in ("review_cells", "review_audit", "review_releases", "review_samples",
                      "review_users"):  # fmt: skip
            db.execute(f"DROP TABLE {table}")  # its triggers go with it
        db.executescript(ddl)
        for table, table_rows in rows.items():
            for row in table_rows:
                db.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
        db.execute("UPDATE meta SET value='4' WHERE key='schema'")


def _reviewed(path: Path, *, comment: bool) -> None:
    run, results = finished_sample(path, "S-1")
    with ResultStore(path) as store, ReviewStore(path) as reviews:
        reviews.open_review(store, run, "S-1")
        key = results[0].key
        reviews.reclassify(
            run, "S-1", key.fov, key.cell_index, "SMUDGE", reviewer="Ann Lee", version=0,
            reason="smudged nucleus",
        )  # fmt: skip
        if comment:
            reviews.comment(run, "S-1", None, None, "stain pale overall", reviewer="Ann Lee")
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO review_users VALUES ('Ann Lee', '$argon2id$x', 1, 1.0, 1.0)")


def test_a_new_file_is_at_schema_7_with_the_review_tables(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    ResultStore(path).close()
    assert _schema(path) == "7"
    objects = _objects(path)
    assert {name for kind, name in objects if kind == "table"} >= set(REVIEW_TABLES)
    assert {name for kind, name in objects if kind == "trigger"} >= set(GUARD_TRIGGERS)
    assert ("view", "review_counted_cells") in objects
    with ReviewStore(path) as reviews:
        assert reviews.verify() == []
    ResultStore(path).close()
    assert _objects(path) == objects  # opening again makes nothing


@pytest.mark.parametrize("opener", [ResultStore, ReviewStore])
@pytest.mark.parametrize("layout", ["schema 4", "before comments and unidentified cells"])
def test_a_schema_4_file_with_review_tables_migrates_with_its_rows(
    tmp_path: Path, opener: type[ResultStore] | type[ReviewStore], layout: str
) -> None:
    path = tmp_path / "results.sqlite"
    ddl = SCHEMA_4_REVIEW_DDL
    if layout != "schema 4":  # the CHECKs of an earlier review table layout
        ddl = ddl.replace(", 'UNIDENTIFIED'", "").replace(", 'comment'", "")
    _reviewed(path, comment=layout == "schema 4")
    _as_schema_4(path, ddl)
    before = _rows(path)
    assert _schema(path) == "4" and len(before["review_audit"]) >= 1

    opener(path).close()

    assert _schema(path) == "7"
    assert "'IG'" in _objects(path)[("table", "review_cells")]  # further classes labelled
    assert _rows(path) == before
    objects = _objects(path)
    assert "'UNIDENTIFIED'" in objects[("table", "review_cells")]
    assert "'comment'" in objects[("table", "review_audit")]
    assert {name for kind, name in objects if kind == "trigger"} >= set(GUARD_TRIGGERS)
    with ReviewStore(path) as reviews:
        assert reviews.verify() == []
        (run,) = {r for r, _ in reviews.states()}
        reviews.comment(run, "S-1", None, None, "checked after the upgrade", reviewer="Bo Chen")
        assert reviews.verify() == []
    with (
        closing(sqlite3.connect(path)) as db,
        pytest.raises(sqlite3.DatabaseError, match="append-only"),
    ):
        db.execute("DELETE FROM review_audit")
    ResultStore(path).close()
    assert _objects(path) == objects  # migrated once


MODEL_CLASSES = (*CELL_CLASSES, *EXTRA_CLASSES)
NINE_CLASSES = (0.02, 0.03, 0.05, 0.0, 0.0, 0.8, 0.04, 0.03, 0.03)
"""A cell of a model with the further classes: NEU..BAS, then IG, NRBC, BLAST, RL."""


def _one_cell(store: ResultStore, sample_id: str, probabilities: tuple[float, ...]) -> str:
    run = store.start_run(model_version="classes-test")
    store.start_sample(run, sample_id, target_cells=1, fields_total=1)
    store.add_field(run, sample_id, 0, 1)
    cell = CellResult(
        key=CellKey(sample_id, 0, 0),
        cell_class=MODEL_CLASSES[probabilities.index(max(probabilities))],
        probabilities=probabilities,
        head_probabilities=(probabilities,),
        bbox=(1, 2, 20, 20),
    )
    store.add_results(run, [cell], {cell.key: cell_thumbnail(0)})
    store.finish_sample(run, store.summary(run, sample_id))
    return run


@pytest.mark.parametrize("older", [False, True])
def test_the_cell_views_carry_a_probability_for_each_further_class(
    tmp_path: Path, older: bool
) -> None:
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as store:
        five = _one_cell(store, "FIVE", (0.7, 0.1, 0.1, 0.05, 0.05))
        nine = _one_cell(store, "NINE", NINE_CLASSES)
    if older:  # a schema-6 file: its cell views have the five probability columns only
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("DROP VIEW counted_cells")
            db.execute("DROP VIEW cell_list")
            db.execute(
                "CREATE VIEW cell_list AS SELECT c.run_id, c.sample_id, c.cell_class,"
                " json_extract(c.probabilities, '$[0]') AS p_NEU FROM cells c"
            )
            db.execute("CREATE VIEW counted_cells AS SELECT * FROM cell_list")
            db.execute("UPDATE meta SET value = '6' WHERE key = 'schema'")
        ResultStore(path).close()
    assert _schema(path) == "7"
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT sample_id, cell_class, p_NEU, p_IG, p_NRBC, p_BLAST, p_RL FROM counted_cells"
            " ORDER BY sample_id"
        ).fetchall()
    assert rows == [
        ("FIVE", "NEU", 0.7, None, None, None, None),
        ("NINE", "IG", 0.02, 0.8, 0.04, 0.03, 0.03),
    ]
    with ResultStore(path, read_only=True) as store:
        (row,) = cell_rows(store, nine, "NINE")
        record = row.record()
        (plain,) = cell_rows(store, five, "FIVE")
    assert (record["p_IG"], record["p_RL"], record["p_BAS"]) == (0.8, 0.03, 0.0)
    assert plain.record()["p_IG"] is None and plain.record()["p_NEU"] == 0.7


@pytest.mark.parametrize("opener", [ResultStore, ReviewStore])
@pytest.mark.parametrize("version", ["5", "6"])
def test_a_file_of_a_recent_schema_opens_and_is_brought_up_to_date(
    tmp_path: Path, opener: type[ResultStore] | type[ReviewStore], version: str
) -> None:
    path = tmp_path / "results.sqlite"
    run, _ = finished_sample(path, "S-1")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (version,))
    opener(path).close()  # migrated in place, no error
    assert _schema(path) == "7"
    with ResultStore(path, read_only=True) as store:
        assert len(cell_rows(store, run, "S-1")) == 12
