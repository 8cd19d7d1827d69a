"""`cells.counted` and the views of schema 3 on real SQLite files: migration of a schema-2 file
(backfilled by the counting rules), read-only opens that change nothing, undecided while running."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from leukoscope.errors import StorageError
from leukoscope.results.counts import summarize
from leukoscope.results.store import ResultStore
from leukoscope.results.tables import cell_rows, sample_rows
from leukoscope.types import CELL_CLASSES, CellClass, CellKey, CellResult
from tests.cli_helpers import run_cli

from .test_simulated_marking import SCHEMA_1

# schema 2: schema 1 plus `samples.simulated`; sample TWO-1 (target 2) has 3 cells in 2 fields,
# its differential counts the first two; its last cell is stored but not counted
SCHEMA_2 = (
    SCHEMA_1.replace("INSERT INTO meta VALUES ('schema', '1');", "")
    + """
INSERT INTO meta VALUES ('schema', '2');
ALTER TABLE samples ADD COLUMN simulated INTEGER;
INSERT INTO samples (run_id, sample_id, status, target_cells, fields_total, started_s, simulated)
    VALUES ('old', 'TWO-1', 'complete', 2, 2, 1.0, 0);
INSERT INTO fields VALUES ('old', 'TWO-1', 0, 1, 'done', ''), ('old', 'TWO-1', 1, 2, 'done', '');
INSERT INTO cells VALUES
    ('old', 'TWO-1', 0, 0, 'NEU', '[0.9,0.025,0.025,0.025,0.025]',
     '[[0.9,0.025,0.025,0.025,0.025]]', 0.0, 0, '', 1, 2, 3, 4, NULL),
    ('old', 'TWO-1', 1, 0, 'LYM', '[0.025,0.9,0.025,0.025,0.025]',
     '[[0.025,0.9,0.025,0.025,0.025]]', 0.0, 0, '', 1, 2, 3, 4, NULL),
    ('old', 'TWO-1', 1, 1, 'MO', '[0.025,0.025,0.9,0.025,0.025]',
     '[[0.025,0.025,0.9,0.025,0.025]]', 0.0, 0, '', 1, 2, 3, 4, NULL);
"""
)


def old_file(path: Path, script: str = SCHEMA_2) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(script)
    db.close()
    return path


def schema_of(path: Path) -> tuple[str, set[str]]:
    db = sqlite3.connect(path)
    try:
        version = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]
        columns = {r[1] for r in db.execute("PRAGMA table_info(cells)")}
    finally:
        db.close()
    return version, columns


def cell(sample: str, fov: int, index: int, cls: CellClass) -> CellResult:
    p = tuple(0.9 if c == cls else 0.025 for c in CELL_CLASSES)
    return CellResult(CellKey(sample, fov, index), cls, p, (p,), 0.0)


def test_a_schema_2_file_migrates_and_marks_what_its_differential_counted(tmp_path: Path) -> None:
    path = old_file(tmp_path / "two.sqlite")
    with ResultStore(path) as store:
        counted = store.query("SELECT fov, cell_index, counted FROM cells WHERE sample_id='TWO-1'")
        assert [tuple(r) for r in counted] == [(0, 0, 1), (1, 0, 1), (1, 1, 0)]
        by_class = dict(
            store.query(
                "SELECT cell_class, COUNT(*) FROM counted_cells WHERE sample_id='TWO-1'"
                " GROUP BY cell_class"
            )
        )
        assert by_class == {"NEU": 1, "LYM": 1}  # target 2: field 0's NEU, field 1's first (LYM)
        assert store.summary("old", "TWO-1").cells_counted == 2
        # the schema-1 sample carried along is marked too; its `simulated` stays unknown
        assert [r.counted for r in cell_rows(store, "old", "OLD-1")] == [True]
        assert {r.sample_id: r.simulated for r in sample_rows(store)}["OLD-1"] is None
    version, columns = schema_of(path)
    assert version == "7" and "counted" in columns  # docs/pipeline.md: schema version 7
    with ResultStore(path) as store:  # reopening a migrated file changes nothing
        assert store.summary("old", "TWO-1").cells_counted == 2


def test_an_old_file_read_only_is_read_as_it_is(tmp_path: Path) -> None:
    path = old_file(tmp_path / "two.sqlite")
    before = path.read_bytes()
    with ResultStore(path, read_only=True) as store:
        assert store.schema_version == 2
        rows = cell_rows(store, "old", "TWO-1")  # no column, no view: decided by counts.py
        assert [(r.cell_class, r.counted) for r in rows] == [
            ("NEU", True),
            ("LYM", True),
            ("MO", False),
        ]
        assert rows[2].probabilities[2] == 0.9
        assert [s.sample_id for s in sample_rows(store)] == ["OLD-1", "TWO-1"]
    version, columns = schema_of(path)
    assert version == "2" and "counted" not in columns
    assert path.read_bytes() == before


def test_a_running_sample_has_no_counted_cells_yet(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run = store.start_run()
        store.start_sample(run, "RUN-1", target_cells=5)
        store.add_field(run, "RUN-1", 0, 2)
        store.add_results(run, [cell("RUN-1", 0, 0, CellClass.NEU)])
        assert store.counted_keys(run, "RUN-1") is None
        assert [r.counted for r in cell_rows(store, run, "RUN-1")] == [None]
        assert store.query("SELECT COUNT(*) FROM counted_cells")[0][0] == 0
        # aborted once field 0 is resolved: final, both its cells count
        store.add_results(run, [cell("RUN-1", 0, 1, CellClass.LYM)])
        ledger = store.ledger(run, "RUN-1")
        store.finish_sample(run, summarize(ledger, aborted="stopped by the user"))
        assert [r.counted for r in cell_rows(store, run, "RUN-1")] == [True, True]


def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    path = old_file(tmp_path / "new.sqlite", SCHEMA_2.replace("'schema', '2'", "'schema', '9'"))
    for read_only in (False, True):
        with pytest.raises(StorageError, match="results schema 9, this build reads 7") as error:
            ResultStore(path, read_only=read_only)
        assert "\n" not in str(error.value)
    assert schema_of(path)[0] == "9"


def test_a_corrupt_sample_stays_undecided_and_the_others_migrate(tmp_path: Path) -> None:
    path = old_file(tmp_path / "two.sqlite")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE cells SET probabilities='not json' WHERE sample_id='OLD-1'")
    db.close()
    with ResultStore(path) as store:
        rows = store.query("SELECT sample_id, counted FROM cells ORDER BY sample_id, fov")
    assert [tuple(r) for r in rows] == [("OLD-1", None), ("TWO-1", 1), ("TWO-1", 1), ("TWO-1", 0)]


def test_the_read_commands_open_an_old_file_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = old_file(tmp_path / "two.sqlite")
    before = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert run_cli(monkeypatch, "runs", "--db", path, "--format", "csv") == 0
    assert run_cli(monkeypatch, "samples", "--db", path, "--format", "csv") == 0
    listed = capsys.readouterr().out
    assert "1970-01-01T00:00:01+00:00" in listed and "TWO-1" in listed
    assert run_cli(monkeypatch, "cells", "TWO-1", "--db", path, "-o", "two.csv") == 0
    rows = list(csv.DictReader((tmp_path / "two.csv").read_text(encoding="utf-8").splitlines()))
    assert [(r["cell_class"], r["counted"]) for r in rows] == [
        ("NEU", "true"),
        ("LYM", "true"),
        ("MO", "false"),
    ]
    assert run_cli(monkeypatch, "cells", "OLD-1", "--db", path, "-o", "one.csv") == 0
    one = (tmp_path / "one.csv").read_text(encoding="utf-8").splitlines()
    assert one[1].endswith(",unknown")  # simulated not recorded: never passes for a patient's
    assert path.read_bytes() == before and schema_of(path)[0] == "2"
