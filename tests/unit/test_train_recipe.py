"""Training-recipe plumbing: fold splits, jitter options and the recipe's defaults."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.classifier.folds import fold_splits
from leukoscope.classifier.recipe import (
    TrainConfig,
    augment_config,
    jitter_options,
    recipe_summary,
)
from leukoscope.errors import ConfigError, DatasetError


def test_defaults_are_the_recipe_that_holds_on_real_cells() -> None:
    config = TrainConfig()
    assert (config.weight_decay, config.warmup_epochs, config.balance) == (1e-4, 0.0, 0.5)
    augment = augment_config(config)
    assert augment is not None and not augment.resamples and not augment.photometric
    assert augment_config(TrainConfig(augment=False)) is None


def test_jitter_options_parse_and_refuse() -> None:
    assert jitter_options("scale=0.1, gain=0.05") == {"scale_jitter": 0.1, "gain_jitter": 0.05}
    assert jitter_options(None) == {} and jitter_options("") == {}
    with pytest.raises(ConfigError, match="expected NAME=VALUE"):
        jitter_options("blur=1")
    with pytest.raises(ConfigError, match="not a number"):
        jitter_options("scale=big")
    jittered = augment_config(TrainConfig(**jitter_options("shift=0.05,contrast=0.2")))
    assert jittered is not None and jittered.resamples and jittered.photometric
    assert "shift 0.05, contrast 0.2 jitter" in recipe_summary(
        TrainConfig(shift_jitter=0.05, contrast_jitter=0.2)
    )


def test_fold_splits_skip_an_absent_class_but_refuse_a_rare_one() -> None:
    labels = np.array([0] * 10 + [1] * 6 + [3] * 5)  # MO and BAS absent
    splits = fold_splits(labels, 5, seed=0)
    assert len(splits) == 5
    held_out = np.sort(np.concatenate([val for _, val in splits]))
    assert np.array_equal(held_out, np.arange(len(labels)))  # every cell validated once
    with pytest.raises(DatasetError, match="class EOS has 4 cells, fewer than the 5 folds"):
        fold_splits(np.array([0] * 10 + [3] * 4), 5, seed=0)
