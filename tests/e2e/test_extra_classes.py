"""A lab's further classes end to end through the CLI: a simulated dataset with IG, NRBC, BLAST and
RL cells trains a model of nine classes, and `train`, `evaluate` and `validate` report per-class
figures for each (a tiny model: the point is that the class list flows, not its accuracy)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from leukoscope.classifier.checkpoint import load_checkpoint
from leukoscope.config import Settings
from leukoscope.review.service import ReviewService
from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES
from tests.cli_helpers import run_cli

NINE = [c.value for c in (*CELL_CLASSES, *EXTRA_CLASSES)]
EXTRA = [c.value for c in EXTRA_CLASSES]
TRAIN = (
    *("--folds", "2", "--epochs", "1", "--batch-size", "16", "--threads", "1"),
    *("--device", "cpu"),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A simulated dataset of 5 x 8 white cells plus 8 of each further class (32 px), and the
    model trained on it."""
    root = tmp_path_factory.mktemp("extra")
    data, run = root / "data", root / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert run_cli(
            monkeypatch, "simulate", "dataset", data, "--cells", "40", "--out-px", "32",
            "--composition", "NEU=20,LYM=20,MO=20,EOS=20,BAS=20",
            "--extra", "IG=8,NRBC=8,BLAST=8,RL=8",
        ) == 0  # fmt: skip
        assert run_cli(monkeypatch, "train", data, *TRAIN, "--out", run) == 0
    return data, run


def test_train_names_every_labelled_class(trained: tuple[Path, Path]) -> None:
    data, run = trained
    assert sorted(p.name for p in (data / "color1").iterdir()) == sorted(NINE)
    _, meta = load_checkpoint(run / "model.pt")
    assert [c.value for c in meta.classes] == NINE  # the five, then the lab's, in class order
    assert meta.class_weights is None or len(meta.class_weights) == len(NINE)
    summary = json.loads((run / "cv.json").read_text())
    assert list(summary["precision"]) == NINE and list(summary["recall"]) == NINE
    assert len(summary["confusion"]) == len(NINE)
    folds = [json.loads((run / f"fold_{k}" / "metrics.json").read_text()) for k in (0, 1)]
    assert all(sum(f["support"][name] for f in folds) == 8 for name in EXTRA)
    table = (run / "cv.md").read_text()
    assert all(f"| {name} | " in table for name in NINE)


def test_evaluate_reports_the_further_classes(
    trained: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, run = trained
    out = tmp_path / "evaluation"
    assert run_cli(monkeypatch, "evaluate", run / "model.pt", data, "--out", out,
                   "--device", "cpu") == 0  # fmt: skip
    shown = capsys.readouterr().out
    rows = [line.split() for line in shown.splitlines() if line.split()[:1] in ([n] for n in EXTRA)]
    assert {row[0] for row in rows} == set(EXTRA)  # a per-class row and a confusion row each
    evaluation = json.loads((out / "evaluation_raw.json").read_text())
    assert all(evaluation["support"][name] == 8 for name in EXTRA)
    assert all(name in evaluation["recall"] for name in EXTRA)
    with (out / "predictions.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header[4 : 4 + len(NINE)] == [f"p_{name}" for name in NINE]


def test_validate_reports_the_further_classes(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels of every class (the simulator's ground truth) against the pipeline with that
    model: per-class recall and precision for the further classes, NRBC outside the differential."""
    _, run = trained
    acquisition, labels = tmp_path / "acq", tmp_path / "labels.csv"
    assert run_cli(
        monkeypatch, "simulate", "acquisition", acquisition, "--sample", "X-1", "--fields", "2",
        "--frame-size", "768", "--cells-per-field", "12", "--atypical", "0.6", "--seed", "3",
    ) == 0  # fmt: skip
    assert run_cli(monkeypatch, "simulate", "labels", acquisition, "--out", labels) == 0
    with labels.open() as handle:
        labelled = {row["class"] for row in csv.DictReader(handle)}
    assert set(EXTRA) <= labelled
    out = tmp_path / "validation"
    status = run_cli(
        monkeypatch, "validate", acquisition, "--labels", labels, "--model", run / "model.pt",
        "--out", out, "--db", tmp_path / "results.sqlite", "--by", "tester",
    )  # fmt: skip
    assert status in (0, 3)  # PASS or FAIL: a two-epoch model is judged, not refused
    figures = json.loads((out / "validation.json").read_text())
    per_class = figures["classification"]["per_class"]
    assert list(per_class)[:5] == [c.value for c in CELL_CLASSES]
    assert all(per_class[name]["reference"] > 0 for name in EXTRA if name in labelled)
    assert "NRBC" not in figures["agreement"]["per_class"]  # not a white cell
    assert {"IG", "BLAST", "RL"} <= set(figures["agreement"]["per_class"])
    report = (out / "validation.md").read_text()
    assert all(f"| {name} |" in report for name in EXTRA)
    exported = tmp_path / "cells.csv"
    assert run_cli(
        monkeypatch, "cells", "X-1", "--db", out / "results.sqlite", "--out", exported
    ) == 0  # fmt: skip
    with exported.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(  # every class of the model has its probability, and they add up to 1
        abs(sum(float(row[f"p_{name}"]) for name in NINE) - 1.0) < 1e-3 for row in rows
    )
    service = ReviewService(out / "results.sqlite", Settings())  # the run validate stored
    try:
        run_id = service.results.runs()[0].run_id
        state = service.view(run_id, "X-1")
        assert state["classes"] == NINE  # a review key and a gallery per class of the model
    finally:
        service.close()
