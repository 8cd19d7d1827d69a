"""MIMO sampling (input repetition rho, batch repetition R) and the class-balanced sampler."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from leukoscope.classifier.batches import (
    balanced_batches,
    class_weights,
    gather_mimo_batch,
    mimo_indices,
)
from leukoscope.classifier.data import CellDataset
from leukoscope.types import MODALITIES


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shape_and_every_head_sees_each_loaded_example_r_times() -> None:
    loaded = torch.arange(100, 116)
    rows = mimo_indices(loaded, heads=4, rho=0.25, repetitions=3, generator=_gen())
    assert rows.shape == (4, 48)
    for row in rows:
        assert Counter(row.tolist()) == {i: 3 for i in range(100, 116)}


def test_rho_one_means_all_heads_share_the_cell() -> None:
    rows = mimo_indices(torch.arange(32), 4, rho=1.0, repetitions=1, generator=_gen())
    assert (rows == rows[0]).all()


def test_rho_fraction_is_shared_and_the_rest_independent() -> None:
    rows = mimo_indices(torch.arange(64), 4, rho=0.5, repetitions=1, generator=_gen(1))
    assert (rows[:, 32:] == rows[0, 32:]).all()  # the repeated part
    independent = rows[:, :32]
    assert set(independent[0].tolist()) == set(independent[1].tolist())
    assert (independent != independent[0]).any(dim=0).float().mean() > 0.9


def test_rho_zero_draws_independent_cells_per_head() -> None:
    rows = mimo_indices(torch.arange(256), 4, rho=0.0, repetitions=1, generator=_gen(2))
    same_everywhere = (rows == rows[0]).all(dim=0).float().mean()
    assert same_everywhere < 0.01
    pairwise_same = (rows[0] == rows[1]).float().mean()
    assert pairwise_same < 0.03  # about 1/256 by chance


def test_deterministic_for_a_seed() -> None:
    a = mimo_indices(torch.arange(20), 3, 0.5, 2, _gen(7))
    b = mimo_indices(torch.arange(20), 3, 0.5, 2, _gen(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize(("rho", "repetitions"), [(-0.1, 1), (1.5, 1), (0.5, 0)])
def test_rejects_bad_options(rho: float, repetitions: int) -> None:
    with pytest.raises(ValueError):
        mimo_indices(torch.arange(4), 2, rho, repetitions, _gen())


def test_gather_takes_each_modality_from_its_own_cell() -> None:
    cells, modalities = 6, len(MODALITIES)
    images = np.zeros((cells, modalities, 1, 2, 2), dtype=np.uint8)
    for c in range(cells):
        for m in range(modalities):
            images[c, m] = 10 * c + m
    labels = np.arange(cells) % 5
    dataset = CellDataset(Path("."), MODALITIES, images, labels, tuple(map(str, range(cells))))
    per_head = torch.tensor([[0, 1], [2, 3], [4, 5], [1, 0]])
    batch, head_labels = gather_mimo_batch(dataset, per_head)
    assert batch.shape == (2, modalities, 1, 2, 2)
    assert batch[:, :, 0, 0, 0].tolist() == [[0, 21, 42, 13], [10, 31, 52, 3]]
    assert head_labels.tolist() == [[0, 2, 4, 1], [1, 3, 0, 0]]


def test_balanced_sampler_evens_out_a_rare_class() -> None:
    labels = np.array([0] * 900 + [1] * 60 + [2] * 30 + [3] * 8 + [4] * 2)
    weights = class_weights(labels)
    per_class = np.bincount(labels, weights=weights)
    assert np.allclose(per_class, 0.2)
    index = np.arange(len(labels))
    batches = balanced_batches(index, labels, 50, 100, _gen(), power=1.0)
    drawn = np.bincount(labels[batches.numpy().ravel()], minlength=5) / batches.numel()
    assert np.all(np.abs(drawn - 0.2) < 0.03)
    unbalanced = balanced_batches(index, labels, 50, 20, _gen(), power=0.0)
    assert (labels[unbalanced.numpy()] == 0).mean() > 0.8


def test_balanced_sampler_only_draws_the_given_cells() -> None:
    labels = np.array([0, 1, 2, 3, 4] * 10)
    subset = np.arange(0, 50, 2)
    batches = balanced_batches(subset, labels, 8, 10, _gen())
    assert set(batches.numpy().ravel().tolist()) <= set(subset.tolist())
