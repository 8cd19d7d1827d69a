"""What the report reads from a run's checkpoint: the figures of the model as the pipeline runs it."""

from __future__ import annotations

from pathlib import Path

from leukoscope.classifier.checkpoint import ModelMeta, save_checkpoint
from leukoscope.classifier.model_info import read_model_info
from leukoscope.classifier.models import build_model
from leukoscope.types import MODALITIES


def _summary(accuracy: float) -> dict[str, object]:
    return {"folds": 5, "accuracy": {"mean": accuracy, "std": 0.01}}


def _checkpoint(path: Path, metrics: dict[str, object]) -> str:
    model = build_model("single", MODALITIES[:1], in_chans=1, width=0.5)
    meta = ModelMeta.default("single", MODALITIES[:1], 1, options={"width": 0.5}, metrics=metrics)
    save_checkpoint(path, model, meta)
    return str(path)


def test_prior_corrected_figures_win_over_the_raw_ones(tmp_path: Path) -> None:
    both = {"cross_validation": _summary(0.90), "cross_validation_prior_corrected": _summary(0.95)}
    info = read_model_info(_checkpoint(tmp_path / "a.pt", both), "")
    assert info.cv["accuracy"] == (0.95, 0.01) and info.cv_folds == 5

    raw_only = {"cross_validation": _summary(0.90)}
    assert read_model_info(_checkpoint(tmp_path / "b.pt", raw_only), "").cv["accuracy"][0] == 0.90


def test_a_checkpoint_without_figures_gets_a_note(tmp_path: Path) -> None:
    info = read_model_info(_checkpoint(tmp_path / "c.pt", {}), "")
    assert info.cv == {} and "no cross-validation" in info.note
