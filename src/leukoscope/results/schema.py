"""The results database's schema: tables, the views users query and its version.

Opening a file read-write creates the schema or migrates an older one in place (`migrations.py`:
1 -> ... -> 7); opening it read-only checks the version and changes nothing (a file from
schema 1 or 2 is read as it is: `read_version` says which, and the readers fall back where a column
is missing). `TABLES` are the layout of schema 4 and `VIEWS` the current views (made after the
migrations); the review tables of schema 5 are in `review_schema.py`.
"""

from __future__ import annotations

import sqlite3

from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES

SCHEMA_VERSION = 7
"""2 added `samples.simulated` (1: simulated, 0: acquired; NULL: stored before it was recorded);
3 added `cells.counted` (1: in the sample's differential, 0: stored but not counted, NULL: not yet
decided) and the views `run_list`, `sample_list`, `cell_list` and `counted_cells`; 4 added the rig
set-up that took a sample's fields (`samples.pixel_size_um`, `samples.settings_digest`: NULL when
not recorded, '' for a sample whose fields disagree), which a model validation is bound to, and
which worker produced each field and cell (`fields.worker`, `fields.worker_key`: the segment worker;
`cells.worker`, `cells.worker_key`: the classify worker; its name, and its CurveZMQ key's name when
keys are configured; NULL when not recorded); `cell_list` shows them (`segment_worker` from the
cell's field); and the process that recorded each run (`runs.pid`, `runs.host`), so that samples of
a run killed without finishing are marked interrupted; and each field's focus measure and quality
notes (`fields.focus`, NULL when not measured; `fields.quality_notes`, comma-separated
`field_quality` notes such as `focus_low`); 5 added the review tables and the review page's
accounts (`review_schema.py`: `review_samples`, `review_releases`, `review_cells`, `review_audit`,
`review_users`, the view `review_counted_cells` and the triggers that keep them append-only), made by
the migration; a file a review had opened holds them already and has them brought up to date; 6
lets a review cell carry the further white-cell classes a lab labels (IG, BLAST, RL: the label
CHECK of `review_cells` and the view `review_counted_cells`); 7 gave the views `cell_list` and
`counted_cells` a probability column for each further class too (`p_IG`, `p_NRBC`, `p_BLAST`,
`p_RL`: NULL where the run's model does not name the class)."""

BASE_VERSION = "4"
"""The version `TABLES` are the layout of: a new file is made at it, then migrated."""

READABLE_VERSIONS = tuple(str(v) for v in range(1, SCHEMA_VERSION + 1))
"""Schema versions a read-only open accepts as they are."""

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_s REAL NOT NULL,
    finished_s REAL,
    model_path TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '',
    config_digest TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    host TEXT
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
    pixel_size_um REAL,
    settings_digest TEXT,
    PRIMARY KEY (run_id, sample_id)
);
CREATE TABLE IF NOT EXISTS fields (
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    fov INTEGER NOT NULL,
    cell_count INTEGER,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    reason TEXT NOT NULL DEFAULT '',
    worker TEXT,
    worker_key TEXT,
    focus REAL,
    quality_notes TEXT,
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
    counted INTEGER,
    worker TEXT,
    worker_key TEXT,
    PRIMARY KEY (run_id, sample_id, fov, cell_index)
);
"""

CELL_INSERT = (
    "INSERT OR IGNORE INTO cells (run_id, sample_id, fov, cell_index, cell_class, probabilities,"
    " head_probabilities, disagreement, flagged, flag_reason, bbox_x, bbox_y, bbox_w, bbox_h,"
    " thumbnail, worker, worker_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""Named columns: a schema-1/2 file migrated in place has `counted` last, a new one too."""


def _iso(column: str) -> str:
    """SQL for a Unix time column as ISO 8601 UTC to the second (NULL stays NULL)."""
    return f"strftime('%Y-%m-%dT%H:%M:%S+00:00', {column}, 'unixepoch')"


PROBABILITY_COLUMNS = tuple(f"p_{c.value}" for c in (*CELL_CLASSES, *EXTRA_CLASSES))
"""A probability column per class a model may name, in the order of a model's classes (the five,
then the further classes); a further class the run's model does not name reads NULL."""


def run_list_sql() -> str:
    """SELECT of the runs as users list them (view `run_list`), oldest first."""
    return (
        f"SELECT r.run_id, {_iso('r.started_s')} AS started_utc,"
        f" {_iso('r.finished_s')} AS finished_utc,"
        " (SELECT COUNT(*) FROM samples s WHERE s.run_id = r.run_id) AS samples,"
        " r.model_version, r.model_path, r.config_digest"
        " FROM runs r ORDER BY r.started_s, r.run_id"
    )


def sample_list_sql(has_simulated: bool = True) -> str:
    """SELECT of the samples as users list them (view `sample_list`), in start order; a schema-1
    file (no `simulated`) reads NULL: not recorded."""
    simulated = "simulated" if has_simulated else "NULL AS simulated"
    return (
        f"SELECT run_id, sample_id, status, reason, {simulated}, target_cells, cells_counted,"
        " cells_flagged, fields_done, fields_failed, fields_total,"
        f" {_iso('started_s')} AS started_utc, {_iso('finished_s')} AS finished_utc,"
        " elapsed_s, source FROM samples ORDER BY started_s, sample_id"
    )


def cell_list_sql(
    has_counted: bool = True, has_simulated: bool = True, has_worker: bool = True
) -> str:
    """SELECT of every stored cell with its sample's `simulated`, one probability column per
    class and the workers that produced it (view `cell_list`); an older file reads NULL where a
    column is missing."""
    probabilities = ", ".join(
        f"json_extract(c.probabilities, '$[{i}]') AS {name}"
        for i, name in enumerate(PROBABILITY_COLUMNS)
    )
    counted = "c.counted" if has_counted else "NULL AS counted"
    simulated = "s.simulated" if has_simulated else "NULL AS simulated"
    workers = (
        "c.worker, c.worker_key, f.worker AS segment_worker"
        if has_worker
        else "NULL AS worker, NULL AS worker_key, NULL AS segment_worker"
    )
    fields = (
        " LEFT JOIN fields f ON f.run_id = c.run_id AND f.sample_id = c.sample_id AND f.fov = c.fov"
        if has_worker
        else ""
    )
    return (
        f"SELECT c.run_id, c.sample_id, c.fov, c.cell_index, c.cell_class, {counted},"
        f" c.flagged, c.flag_reason, c.disagreement, {probabilities},"
        f" c.bbox_x, c.bbox_y, c.bbox_w, c.bbox_h, {workers}, {simulated}"
        " FROM cells c JOIN samples s ON s.run_id = c.run_id AND s.sample_id = c.sample_id"
        f"{fields} ORDER BY c.run_id, c.sample_id, c.fov, c.cell_index"
    )


VIEWS = f"""
CREATE VIEW IF NOT EXISTS run_list AS {run_list_sql()};
CREATE VIEW IF NOT EXISTS sample_list AS {sample_list_sql()};
CREATE VIEW IF NOT EXISTS cell_list AS {cell_list_sql()};
CREATE VIEW IF NOT EXISTS counted_cells AS SELECT * FROM cell_list WHERE counted = 1;
"""


def execute_script(db: sqlite3.Connection, script: str) -> None:
    """Run a script's statements one by one inside the open transaction (`executescript` would
    commit it); a trigger's body, with its own semicolons, stays one statement."""
    statement = ""
    for part in script.split(";"):
        statement += part + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                db.execute(statement)
            statement = ""
    if statement.strip(" \n;"):
        db.execute(statement)


def read_version(db: sqlite3.Connection) -> str | None:
    """The schema version recorded in the file (None when it has none)."""
    row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    return None if row is None else str(row[0])
