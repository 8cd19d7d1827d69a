"""`leukoscope evaluate` prints rich tables (precision, recall, F1, support per class) and writes
per-cell predictions (CSV) beside its report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from leukoscope.classifier.predictions import COLUMNS

from ..cli_helpers import run_cli
from ..integration.pipeline_helpers import untrained_checkpoint
from .test_train_cli import CELLS_PER_CLASS, write_dataset

CLASSES = ("NEU", "LYM", "MO", "EOS", "BAS")


def test_evaluate_prints_per_class_tables_and_writes_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    data = write_dataset(tmp_path / "data")
    model = untrained_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "eval"
    assert run_cli(monkeypatch, "evaluate", model, data, "--out", out, "--device", "cpu") == 0
    printed = capsys.readouterr().out
    assert "## raw argmax" in printed
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if "precision %" in line)
    assert lines[start].split() == ["class", "precision", "%", "recall", "%", "F1", "%", "support"]
    rows = {line.split()[0]: line.split() for line in lines[start + 2 : start + 7]}
    written = json.loads((out / "evaluation_raw.json").read_text())
    for name in CLASSES:  # every class with its F1 and its support (the true cells)
        assert rows[name][-1] == str(CELLS_PER_CLASS)
        assert float(rows[name][3]) == pytest.approx(100 * written["f1"][name], abs=0.006)
    assert (
        "| class | precision % | recall % | F1 % | support |"
        in (out / "evaluation_raw.md").read_text()
    )

    predictions = out / "predictions.csv"
    assert f"per-cell {predictions}" in printed.replace("\n", "")
    with predictions.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == COLUMNS
    assert len(table) == 5 * CELLS_PER_CLASS == written["cells"]
    assert len({r["cell_id"] for r in table}) == len(table)
    for name in CLASSES:
        assert sum(r["true_class"] == name for r in table) == CELLS_PER_CLASS
    for row in table:
        probabilities = [float(row[f"p_{name}"]) for name in CLASSES]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
        assert row["predicted_class"] == CLASSES[probabilities.index(max(probabilities))]
        assert row["correct"] == str(int(row["predicted_class"] == row["true_class"]))
    # no correction in this model: the CSV's calls are the raw argmax the report scored
    correct = sum(int(r["correct"]) for r in table)
    assert correct / len(table) == pytest.approx(written["accuracy"])
    assert all(r["predicted_class"] == r["raw_predicted_class"] for r in table)
    confusion = written["confusion"]
    for i, truth in enumerate(CLASSES):
        for j, called in enumerate(CLASSES):
            pairs = sum(r["true_class"] == truth and r["predicted_class"] == called for r in table)
            assert pairs == confusion[i][j]
