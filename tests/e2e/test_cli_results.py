"""Results a user can query: a simulated sample run through the CLI, then the database's
`counted_cells` view (plain SQL), `leukoscope cells` (CSV and Parquet read back), `runs` and
`samples` must give exactly the report's numbers."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import leukoscope
from leukoscope.results.tables import CELL_COLUMNS
from tests.cli_helpers import run_cli

SAMPLE = "query-1"
TARGET = 15  # the simulated fields (seed 5) hold 10 cells each: the second overshoots
SHIPPED = Path(leukoscope.__file__).parent / "models" / "default.pt"


@dataclass(frozen=True)
class Ran:
    folder: Path
    db: Path
    model: Path
    report: dict[str, object]


def _environment(monkeypatch: pytest.MonkeyPatch, model: Path, folder: Path) -> None:
    for key in [k for k in os.environ if k.startswith("LEUKOSCOPE")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LEUKOSCOPE__CLASSIFIER__MODEL_PATH", str(model))
    monkeypatch.setenv("LEUKOSCOPE__CLASSIFIER__THREADS", "1")
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__WIDTH", "512")
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__HEIGHT", "512")
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.chdir(folder)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    folder = tmp_path_factory.mktemp("results")
    model = SHIPPED  # the shipped model: a mix of classes to compare class by class
    db = folder / "results.sqlite"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _environment(monkeypatch, model, folder)
        args = ("--sample", SAMPLE, "--cells", TARGET, "--out", folder / "acq", "--db", db)
        assert run_cli(monkeypatch, "run", "--simulate", *args, "--seed", "5") == 0
        out = folder / "report.json"
        assert (
            run_cli(monkeypatch, "report", SAMPLE, "--db", db, "--format", "json", "-o", out) == 0
        )
    yield Ran(folder, db, model, json.loads(out.read_text(encoding="utf-8")))


@pytest.fixture
def env(ran: Ran, monkeypatch: pytest.MonkeyPatch) -> Ran:
    _environment(monkeypatch, ran.model, ran.folder)
    return ran


def report_counts(ran: Ran) -> dict[str, int]:
    differential = ran.report["differential"]
    assert isinstance(differential, list)
    return {d["cell_class"]: d["count"] for d in differential if d["count"]}


def test_the_counted_cells_view_gives_the_reports_numbers(ran: Ran) -> None:
    sample = ran.report["sample"]
    assert isinstance(sample, dict) and sample["cells_counted"] == TARGET
    with sqlite3.connect(f"file:{ran.db}?mode=ro", uri=True) as db:
        counted = dict(
            db.execute("SELECT cell_class, COUNT(*) FROM counted_cells GROUP BY cell_class")
        )
        stored = db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        probabilities = db.execute(
            "SELECT p_NEU + p_LYM + p_MO + p_EOS + p_BAS FROM counted_cells"
        ).fetchall()
    assert counted == report_counts(ran)
    assert len(counted) >= 2  # more than one class: the comparison is class by class
    # the pipeline classified more cells than it counts (the last field overshoots the target):
    # a plain GROUP BY over `cells` would not give the report's numbers
    assert stored > TARGET
    assert all(abs(total - 1.0) < 1e-6 for (total,) in probabilities)


def test_cells_exports_them_as_csv(env: Ran, monkeypatch: pytest.MonkeyPatch) -> None:
    out = env.folder / "cells.csv"
    assert run_cli(monkeypatch, "cells", SAMPLE, "--db", env.db, "-o", out) == 0
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CELL_COLUMNS
    assert Counter(r["cell_class"] for r in rows if r["counted"] == "true") == report_counts(env)
    assert {r["counted"] for r in rows} == {"true", "false"}
    assert {r["simulated"] for r in rows} == {"true"}  # never passes for a patient's result


def test_cells_exports_them_as_parquet(env: Ran, monkeypatch: pytest.MonkeyPatch) -> None:
    out = env.folder / "cells.parquet"
    code = run_cli(monkeypatch, "cells", SAMPLE, "--db", env.db, "--format", "parquet", "-o", out)
    assert code == 0
    table = pq.read_table(out)
    assert tuple(table.column_names) == CELL_COLUMNS
    assert (
        table.schema.field("counted").type == "bool" and table.schema.field("fov").type == "int32"
    )
    assert table.schema.metadata[b"leukoscope.schema"] == b"leukoscope-cells/2"
    rows = table.to_pylist()
    assert Counter(r["cell_class"] for r in rows if r["counted"]) == report_counts(env)
    assert all(r["simulated"] is True for r in rows)


def test_counted_only_to_stdout(
    env: Ran, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run_cli(monkeypatch, "cells", SAMPLE, "--db", env.db, "--counted-only", "-o", "-") == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(captured.out.splitlines()))
    assert len(rows) == TARGET and {r["counted"] for r in rows} == {"true"}
    assert "SIMULATED" in captured.err


def test_runs_and_samples_list_what_the_report_says(
    env: Ran, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run_cli(monkeypatch, "runs", "--db", env.db, "--format", "csv") == 0
    (run,) = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    digest = hashlib.sha256(env.model.read_bytes()).hexdigest()
    assert run["model_version"].endswith(f"sha256:{digest}")
    assert datetime.fromisoformat(run["started_utc"]).utcoffset() is not None
    assert run["samples"] == "1"
    assert run_cli(monkeypatch, "samples", "--db", env.db, "--format", "json") == 0
    (sample,) = json.loads(capsys.readouterr().out)
    assert sample["run_id"] == run["run_id"] and sample["sample_id"] == SAMPLE
    assert sample["cells_counted"] == TARGET and sample["simulated"] is True
    finished = datetime.fromisoformat(sample["finished_utc"])
    assert finished >= datetime.fromisoformat(sample["started_utc"])
    # the on-screen tables name the run, the model and mark the sample simulated
    monkeypatch.setenv("COLUMNS", "80")  # a standard terminal: every word whole, no line longer
    assert run_cli(monkeypatch, "runs", "--db", env.db) == 0
    screen = capsys.readouterr().out
    lines = screen.splitlines()[1:]  # below the heading (a long path wraps in the terminal)
    assert all(len(line) <= 80 for line in lines)
    words = [run["run_id"][:12], digest[:12], run["started_utc"][:10], "samples", "finished"]
    assert all(any(w in line for line in lines) for w in words), screen
    assert run_cli(monkeypatch, "samples", "--db", env.db, "--run", run["run_id"][:6]) == 0
    screen = capsys.readouterr().out
    lines = screen.splitlines()[1:]
    assert all(len(line) <= 80 for line in lines)
    for word in (SAMPLE, "SIMULATED", run["run_id"][:8], "complete", "flagged", "simulated"):
        assert any(word in line for line in lines), (word, screen)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cells", "nope"), "no sample 'nope'"),
        (("cells", SAMPLE, "--format", "xlsx"), "format 'xlsx' is not one of csv, json, parquet"),
        (("cells", SAMPLE, "--format", "parquet", "-o", "-"), "parquet is binary"),
        (("cells", SAMPLE, "--run", "zz"), "no run 'zz'"),
        (("cells", "../etc"), "sample id"),
        (("samples", "--run", "zz"), "no run 'zz'"),
        (("runs", "--format", "xml"), "format 'xml' is not one of table, csv, json"),
        (("cells", SAMPLE, "-o", "missing-folder/cells.csv"), "folder missing-folder"),
    ],
)
def test_bad_input_is_one_error_line(
    env: Ran,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    capsys.readouterr()
    assert run_cli(monkeypatch, *args, "--db", env.db) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_a_missing_database_is_not_created(env: Ran, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = env.folder / "none.sqlite"
    for command in ("runs", "samples"):
        assert run_cli(monkeypatch, command, "--db", missing) == 2
    assert run_cli(monkeypatch, "cells", SAMPLE, "--db", missing) == 2
    assert not missing.exists()
