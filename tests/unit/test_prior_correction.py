"""The class-prior correction that undoes a class-balanced training sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from leukoscope.classifier.checkpoint import ModelMeta
from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.models import build_model
from leukoscope.classifier.prior import (
    candidate_powers,
    count_bias,
    fit_prior_correction,
    prior_correction,
)
from leukoscope.classifier.train import FoldResult
from leukoscope.types import MODALITIES


def test_weights_follow_counts_to_the_balancing_power() -> None:
    counts = {"NEU": 400, "LYM": 200, "MO": 4, "EOS": 40, "BAS": 1}
    assert prior_correction(counts, 1.0) == pytest.approx([1.0, 0.5, 0.01, 0.1, 0.0025])
    assert prior_correction(counts, 0.5) == pytest.approx([1.0, 0.5**0.5, 0.1, 0.1**0.5, 0.05])
    assert prior_correction(counts, 0.0) is None


def _fold(k: int, labels: np.ndarray, probs: np.ndarray) -> FoldResult:
    index = np.arange(k, len(labels), 2)
    return FoldResult(k, index, probs[index], {}, Path("unused"))


def test_fitted_power_stops_short_of_an_over_correction() -> None:
    """An over-confident model: the full correction (power 1) would call every MO a NEU, none (power
    0) leaves false MO calls; only a partial power classifies every cell right."""
    counts = {"NEU": 1000, "MO": 10}
    labels = np.array([0] * 1000 + [2] * 10)
    probs = np.zeros((1010, 2, 5), dtype=np.float32)
    probs[:, :, 0] = 0.9  # confident NEU ...
    probs[:, :, 2] = 0.1
    probs[990:1000, :, 0], probs[990:1000, :, 2] = 0.4, 0.6  # ... ten NEU called MO raw
    probs[1000:, :, 0], probs[1000:, :, 2] = 0.1, 0.9  # the monocytes, confident and right
    folds = [_fold(k, labels, probs) for k in (0, 1)]

    fitted = fit_prior_correction(folds, labels, counts, balance=1.0)

    # MO weight 0.01 ** power must keep 0.9 * w > 0.1 and push 0.6 * w < 0.4: 0.09 < power < 0.47.
    assert 0.09 < fitted.power < 0.47
    assert fitted.weights == pytest.approx(prior_correction(counts, fitted.power))
    assert fitted.summary["accuracy"]["mean"] == 1.0 and fitted.summary["folds"] == 2
    assert fitted.summary["count_bias"] == 0.0


def test_count_bias_is_the_worst_class_total_error() -> None:
    labels = np.array([0, 0, 0, 0, 2, 2])
    probs = np.zeros((6, 1, 5), dtype=np.float32)
    probs[:5, 0, 0] = 1.0  # one MO called NEU: NEU 5/4, MO 1/2
    probs[5, 0, 2] = 1.0
    assert count_bias(labels, probs) == pytest.approx(0.5)
    probs[4, 0] = [0, 0, 1, 0, 0]
    assert count_bias(labels, probs) == 0.0


def test_candidate_powers_span_zero_to_the_balance() -> None:
    assert candidate_powers(1.0)[:3] == [0.0, 0.05, 0.1] and candidate_powers(1.0)[-1] == 1.0
    assert candidate_powers(0.01) == [0.0, 0.01]


def test_no_power_above_the_balancing_power_is_tried() -> None:
    counts = {"NEU": 100, "MO": 10}
    labels = np.array([0] * 100 + [2] * 10)
    probs = np.full((110, 1, 5), 0.2, dtype=np.float32)
    fitted = fit_prior_correction([_fold(0, labels, probs)], labels, counts, balance=0.3)
    assert 0.0 <= fitted.power <= 0.3


def test_predictor_applies_the_weights_per_head_and_renormalises() -> None:
    torch.manual_seed(0)
    model = build_model("mm_mimo", MODALITIES, in_chans=1, width=0.5)
    plain = ModelMeta.default("mm_mimo", MODALITIES, 1, input_size=32, options={"width": 0.5})
    weighted = plain.model_copy(update={"class_weights": [1.0, 1e-9, 1e-9, 1e-9, 1e-9]})
    crops = np.random.default_rng(1).integers(0, 255, (6, 4, 32, 32), dtype=np.uint8)
    before = Predictor.from_model(model, plain, backend="torch", threads=1).predict(crops)
    after = Predictor.from_model(model, weighted, backend="torch", threads=1).predict(crops)
    assert not np.allclose(before.probabilities, after.probabilities)
    assert np.allclose(after.head_probabilities.sum(axis=-1), 1.0, atol=1e-5)
    assert np.allclose(after.probabilities, after.head_probabilities.mean(axis=1), atol=1e-6)
    assert (after.probabilities.argmax(axis=1) == 0).all()


def test_weights_must_match_the_classes() -> None:
    with pytest.raises(ValueError, match="class_weights"):
        ModelMeta.default("single", MODALITIES[:1], 1, class_weights=[1.0, 2.0])
