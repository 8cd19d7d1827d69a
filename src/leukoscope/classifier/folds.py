"""Cross-validation folds: stratified k-fold splits of a dataset's cells."""

from __future__ import annotations

import numpy as np

from leukoscope.errors import DatasetError
from leukoscope.types import CELL_CLASSES, CellClass


def fold_splits(
    labels: np.ndarray,
    folds: int,
    seed: int,
    classes: tuple[CellClass, ...] = CELL_CLASSES,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold splits (train, validation) of the cell indices (labels index `classes`),
    shuffled by `seed`."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels, minlength=len(classes))
    present = np.flatnonzero(counts)  # a class with no cells at all is not split
    rare = present[counts[present].argmin()]
    if counts[rare] < folds:
        raise DatasetError(
            f"class {classes[rare].value} has {counts[rare]} cells, fewer than the {folds} "
            "folds asked for"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    placeholder = np.zeros(len(labels))
    return [(train, val) for train, val in splitter.split(placeholder, labels)]
