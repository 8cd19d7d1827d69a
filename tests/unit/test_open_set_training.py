"""`train` fits the open-set score at the end of its final fit, on cells the final fit left out."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from leukoscope.classifier.checkpoint import read_checkpoint
from leukoscope.classifier.data import load_dataset
from leukoscope.classifier.open_set_fit import held_out_split
from leukoscope.classifier.progress import TrainProgress
from leukoscope.classifier.recipe import TrainConfig
from leukoscope.classifier.train import TrainingRun
from leukoscope.types import CELL_CLASSES, MODALITIES


def _cells(root: Path, per_class: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for m in MODALITIES:
        for c, cell_class in enumerate(CELL_CLASSES):
            folder = root / m.value / cell_class.value
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                image = rng.integers(0, 60, (16, 16)) + 30 * c
                cv2.imwrite(
                    str(folder / f"{cell_class.value.lower()}_{i:03d}.png"), image.astype(np.uint8)
                )
    return root


def test_held_out_split_keeps_every_class_and_is_repeatable() -> None:
    labels = np.array([0] * 50 + [1] * 10 + [2])
    kept, held = held_out_split(labels, 0.2, 3)
    assert len(held) == 10 + 2 and set(labels[kept]) == {0, 1, 2}
    assert np.array_equal(held, held_out_split(labels, 0.2, 3)[1])
    assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == len(labels)


def test_the_final_fit_carries_an_open_set_fit_on_cells_it_left_out(tmp_path: Path) -> None:
    dataset = load_dataset(_cells(tmp_path / "data"), 16)
    config = TrainConfig(
        folds=2, epochs=1, input_size=16, batch_size=8, width=0.5, open_set_holdout=0.4
    )
    run = TrainingRun(
        dataset, config, tmp_path / "run", torch.device("cpu"), TrainProgress(None, quiet=True)
    )
    path = run.final_fit()
    _, meta = read_checkpoint(path)
    held = np.load(path.parent / "open_set_index.npy")
    assert meta.open_set is not None and meta.open_set.cells == len(held) == 25
    assert (
        meta.open_set.target_flag_rate == 0.05
        and "left out by the final fit" in meta.open_set.source
    )
    assert meta.provenance["trained_on_cells"] == len(dataset.labels) - len(held)


def test_no_open_set_fit_when_its_rate_is_zero(tmp_path: Path) -> None:
    dataset = load_dataset(_cells(tmp_path / "data", per_class=4), 16)
    config = TrainConfig(folds=2, epochs=1, input_size=16, batch_size=8, width=0.5, open_set_rate=0)
    run = TrainingRun(
        dataset, config, tmp_path / "run", torch.device("cpu"), TrainProgress(None, quiet=True)
    )
    path = run.final_fit()
    _, meta = read_checkpoint(path)
    assert meta.open_set is None and meta.provenance["trained_on_cells"] == len(dataset.labels)
