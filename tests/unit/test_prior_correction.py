"""The class-prior correction that undoes a class-balanced training sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leukoscope.classifier.checkpoint import ModelMeta
from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.models import build_model
from leukoscope.classifier.train import prior_correction
from leukoscope.types import MODALITIES


def test_weights_follow_counts_to_the_balancing_power() -> None:
    counts = {"NEU": 400, "LYM": 200, "MO": 4, "EOS": 40, "BAS": 1}
    assert prior_correction(counts, 1.0) == pytest.approx([1.0, 0.5, 0.01, 0.1, 0.0025])
    assert prior_correction(counts, 0.5) == pytest.approx([1.0, 0.5**0.5, 0.1, 0.1**0.5, 0.05])
    assert prior_correction(counts, 0.0) is None


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
