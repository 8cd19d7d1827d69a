"""The training run object: its pieces (folds, final fit) reuse what is done, its figures are typed,
and a wrong piece or a changed recipe in the same folder is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from leukoscope.classifier.data import load_dataset
from leukoscope.classifier.progress import TrainProgress
from leukoscope.classifier.recipe import TrainConfig
from leukoscope.classifier.train import TrainingRun
from leukoscope.errors import ParameterError
from tests.unit.test_data import write_cells


def _run(tmp_path: Path, **recipe: object) -> TrainingRun:
    dataset = load_dataset(write_cells(tmp_path / "data"), 16)
    config = TrainConfig(folds=2, epochs=1, input_size=16, batch_size=4, **recipe)  # type: ignore[arg-type]
    progress = TrainProgress(None, quiet=True)
    return TrainingRun(dataset, config, tmp_path / "run", torch.device("cpu"), progress)


def test_a_fold_is_trained_once_and_reused_with_typed_figures(tmp_path: Path) -> None:
    run = _run(tmp_path)
    [first] = run.parts(["1"])
    stored = json.loads((tmp_path / "run" / "fold_1" / "metrics.json").read_text())
    assert first.accuracy == pytest.approx(stored["accuracy"])
    assert first.macro_f1 == pytest.approx(stored["macro_f1"])
    assert first.train_s == stored["train_s"] > 0
    modified = (tmp_path / "run" / "fold_1" / "model.pt").stat().st_mtime_ns
    folds, summary = run.cross_validate()
    assert [f.fold for f in folds] == [0, 1] and summary["folds"] == 2
    assert (tmp_path / "run" / "fold_1" / "model.pt").stat().st_mtime_ns == modified  # reused
    assert summary["train_s_total"] == pytest.approx(sum(f.train_s for f in folds), abs=0.11)


def test_an_unknown_piece_and_a_changed_recipe_are_refused(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with pytest.raises(ParameterError, match="unknown part '7': a fold 0-1 or 'final'"):
        run.parts(["7"])
    with pytest.raises(ParameterError, match=r"another configuration \(rho: 0.5 -> 0.25\)"):
        _run(tmp_path, rho=0.25)
