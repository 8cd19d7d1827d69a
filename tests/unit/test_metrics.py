"""Metrics from per-head probabilities: accuracy, macro figures, head agreement, fold summary."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.classifier.evaluate import (
    apply_class_weights,
    compute_metrics,
    percent,
    summarize,
)


def _one_hot(classes: list[int], heads: int = 1) -> np.ndarray:
    probs = np.full((len(classes), heads, 5), 0.01)
    for i, c in enumerate(classes):
        probs[i, :, c] = 0.96
    return probs


def test_perfect_and_per_class_figures() -> None:
    labels = np.array([0, 0, 0, 1, 4])
    metrics = compute_metrics(labels, _one_hot([0, 0, 1, 1, 4]))
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["recall"]["NEU"] == pytest.approx(2 / 3)
    assert metrics["precision"]["LYM"] == pytest.approx(0.5)
    # Macro figures average the classes present in the labels (NEU, LYM, BAS).
    assert metrics["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 2 * 0.5 * 1 / 1.5, 1.0]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1))
    assert metrics["confusion"][0] == [2, 1, 0, 0, 0]
    assert "head_accuracy" not in metrics


def test_heads_are_averaged_in_probability_and_disagreement_counted() -> None:
    probs = _one_hot([0, 1], heads=3)
    probs[0, 2] = _one_hot([1])[0, 0]  # cell 0: one head of three says LYM
    metrics = compute_metrics(np.array([0, 1]), probs)
    assert metrics["accuracy"] == 1.0
    assert metrics["head_accuracy"] == [1.0, 1.0, 0.5]
    assert metrics["head_disagreement"] == 0.5


def test_summary_mean_and_sample_std() -> None:
    folds = [compute_metrics(np.array([0, 1]), _one_hot(p)) for p in ([0, 1], [0, 0])]
    summary = summarize(folds)
    assert summary["accuracy"]["mean"] == pytest.approx(0.75)
    assert summary["accuracy"]["std"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert summary["per_fold"]["accuracy"] == [1.0, 0.5]
    assert summary["confusion"][0][0] == 2
    assert percent(summary["accuracy"]) == "75.00 ± 35.36"


def test_class_weights_shift_probabilities_per_head() -> None:
    probs = np.array([[[0.5, 0.5, 0.0, 0.0, 0.0]]])
    weighted = apply_class_weights(probs, [1.0, 0.25, 1.0, 1.0, 1.0])
    assert weighted[0, 0, :2].tolist() == pytest.approx([0.8, 0.2])
    assert apply_class_weights(probs, None) is probs
