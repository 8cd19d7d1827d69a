"""A simulated sample is marked simulated in the store and in every report format; old databases
migrate (schema 1 -> 2) without losing anything and say the flag was not recorded."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from leukoscope.config import Settings
from leukoscope.errors import StorageError
from leukoscope.pipeline.store import SCHEMA_VERSION, ResultStore
from leukoscope.pipeline.store_tables import CELL_COLUMNS, cell_rows
from leukoscope.report.data import gather_report
from leukoscope.report.export import render_csv, render_json
from leukoscope.report.html import render_html
from leukoscope.report.table import summary_table
from leukoscope.report.tables import render_csv as render_cells_csv
from leukoscope.types import CELL_CLASSES, CellClass, CellKey, CellResult

# schema 1 as shipped before `samples.simulated` (copied from the store of commit 9ce8310)
SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_s REAL NOT NULL, finished_s REAL,
    model_path TEXT NOT NULL DEFAULT '', model_version TEXT NOT NULL DEFAULT '',
    config_digest TEXT NOT NULL DEFAULT '');
CREATE TABLE samples (run_id TEXT NOT NULL REFERENCES runs(run_id), sample_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running', reason TEXT NOT NULL DEFAULT '',
    target_cells INTEGER NOT NULL DEFAULT 200, fields_total INTEGER,
    fields_done INTEGER NOT NULL DEFAULT 0, fields_failed INTEGER NOT NULL DEFAULT 0,
    cells_counted INTEGER NOT NULL DEFAULT 0, cells_flagged INTEGER NOT NULL DEFAULT 0,
    started_s REAL NOT NULL, finished_s REAL, elapsed_s REAL NOT NULL DEFAULT 0,
    timings TEXT NOT NULL DEFAULT '{}', source TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, sample_id));
CREATE TABLE fields (run_id TEXT NOT NULL, sample_id TEXT NOT NULL, fov INTEGER NOT NULL,
    cell_count INTEGER, status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    reason TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, sample_id, fov));
CREATE TABLE cells (run_id TEXT NOT NULL, sample_id TEXT NOT NULL, fov INTEGER NOT NULL,
    cell_index INTEGER NOT NULL, cell_class TEXT NOT NULL, probabilities TEXT NOT NULL,
    head_probabilities TEXT NOT NULL, disagreement REAL NOT NULL, flagged INTEGER NOT NULL,
    flag_reason TEXT NOT NULL, bbox_x INTEGER NOT NULL, bbox_y INTEGER NOT NULL,
    bbox_w INTEGER NOT NULL, bbox_h INTEGER NOT NULL, thumbnail BLOB,
    PRIMARY KEY (run_id, sample_id, fov, cell_index));
INSERT INTO runs (run_id, started_s) VALUES ('old', 1.0);
INSERT INTO samples (run_id, sample_id, status, fields_total, started_s)
    VALUES ('old', 'OLD-1', 'complete', 1, 1.0);
INSERT INTO fields VALUES ('old', 'OLD-1', 0, 1, 'done', '');
INSERT INTO cells VALUES ('old', 'OLD-1', 0, 0, 'NEU', '[0.9,0.025,0.025,0.025,0.025]',
    '[[0.9,0.025,0.025,0.025,0.025]]', 0.0, 0, '', 1, 2, 3, 4, NULL);
"""


def neutrophil(sample: str, fov: int = 0, index: int = 0) -> CellResult:
    p = tuple(0.9 if c == CellClass.NEU else 0.025 for c in CELL_CLASSES)
    return CellResult(CellKey(sample, fov, index), CellClass.NEU, p, (p,), 0.0)


def stored(store: ResultStore, sample: str, *, simulated: bool) -> str:
    run_id = store.start_run()
    store.start_sample(run_id, sample, target_cells=0, fields_total=1, simulated=simulated)
    store.add_field(run_id, sample, 0, 1)
    store.add_results(run_id, [neutrophil(sample)])
    store.finish_sample(run_id, store.summary(run_id, sample))
    return run_id


def test_schema_1_database_migrates_and_keeps_its_results(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
    with ResultStore(path) as store:
        summary = store.summary("old", "OLD-1")
        assert summary.cells_counted == 1 and summary.simulated is None  # not recorded
        run_id = stored(store, "NEW-1", simulated=True)
        assert store.summary(run_id, "NEW-1").simulated is True
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (
            str(SCHEMA_VERSION),
        )
    with ResultStore(path) as store:  # reopening a migrated database is a no-op
        assert store.summary("old", "OLD-1").cells_counted == 1


def test_every_report_format_marks_a_simulated_sample(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        sim_run = stored(store, "SIM-1", simulated=True)
        real_run = stored(store, "REAL-1", simulated=False)
        sim = gather_report(store, "SIM-1", sim_run, Settings())
        real = gather_report(store, "REAL-1", real_run, Settings())
    html = render_html(sim)
    assert "<title>SIMULATED" in html and 'id="simulated"' in html
    assert "SIMULATED" not in render_html(real)
    assert json.loads(render_json(sim))["sample"]["simulated"] is True
    assert json.loads(render_json(real))["sample"]["simulated"] is False
    assert "simulated" in [f["code"] for f in json.loads(render_json(sim))["quality_flags"]]
    rows = list(csv.DictReader(io.StringIO(render_csv(sim))))
    assert {row["simulated"] for row in rows} == {"true"}
    assert all("simulated" in row["quality_flags"].split(";") for row in rows)
    assert {r["simulated"] for r in csv.DictReader(io.StringIO(render_csv(real)))} == {"false"}


def test_the_per_cell_csv_says_simulated(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        sim_run = stored(store, "SIM-1", simulated=True)
        real_run = stored(store, "REAL-1", simulated=False)
        records = [
            r.record()
            for run, sample in ((sim_run, "SIM-1"), (real_run, "REAL-1"))
            for r in cell_rows(store, run, sample)
        ]
    rows = list(csv.DictReader(io.StringIO(render_cells_csv(records, CELL_COLUMNS))))
    assert {(r["sample_id"], r["simulated"]) for r in rows} == {
        ("SIM-1", "true"),
        ("REAL-1", "false"),
    }


def test_live_table_says_simulated(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_id = stored(store, "SIM-1", simulated=True)
        table = summary_table(store.summary(run_id, "SIM-1"))
    assert str(table.title).startswith("SIMULATED sample SIM-1")
    assert "not from a patient" in str(table.caption)


def test_a_database_opened_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        run_id = stored(store, "SIM-1", simulated=True)
    with ResultStore(path, read_only=True) as store:
        assert store.summary(run_id, "SIM-1").simulated is True
        with pytest.raises(StorageError, match="readonly"):
            store.start_run()


def test_a_schema_1_database_reads_read_only_without_migrating(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
    with ResultStore(path, read_only=True) as store:
        assert store.summary("old", "OLD-1").simulated is None
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta").fetchone() == ("1",)
