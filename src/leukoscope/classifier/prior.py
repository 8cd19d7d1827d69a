"""The class-prior correction a shipped model applies: undoing what a class-balanced sampler taught.

The sampler draws a cell with weight count ** -balance, so the network learns priors proportional to
count ** (1 - balance); the correction multiplies each head's probabilities by count ** power
(`ModelMeta.class_weights`), with the power fitted on held-out predictions (docs/training.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from leukoscope.classifier.evaluate import (
    apply_class_weights,
    compute_metrics,
    predicted_classes,
    summarize,
)
from leukoscope.types import CELL_CLASSES


class HeldOut(Protocol):
    """A fold's held-out cells and the probabilities the fold's model gave them."""

    @property
    def val_index(self) -> np.ndarray: ...

    @property
    def val_probs(self) -> np.ndarray: ...


def prior_correction(
    counts: dict[str, int], power: float, classes: Sequence[str] | None = None
) -> list[float] | None:
    """Weights count ** power per class of `classes` (the five by default; normalised to a maximum
    of 1), None for power 0.

    The sampler draws a cell with weight count ** -balance, so in theory the model learns priors
    proportional to count ** (1 - balance) and power = balance restores the data's priors. Without
    a correction a 200-cell differential over-counts the rare classes (benchmarks/count_accuracy.py).
    """
    if power == 0:
        return None
    names = classes if classes is not None else [c.value for c in CELL_CLASSES]
    raw = [max(counts.get(name, 0), 1) ** power for name in names]
    return [w / max(raw) for w in raw]


PRIOR_POWER_STEP = 0.05


@dataclass(frozen=True)
class PriorCorrection:
    """The correction a shipped model applies, chosen on held-out predictions."""

    power: float
    balance: float
    weights: list[float] | None
    summary: dict[str, Any]

    def metadata(self) -> dict[str, Any]:
        return {
            "power": self.power,
            "balance": self.balance,
            "weights": self.weights,
            "chosen_by": "class totals of the out-of-fold predictions closest to the true ones",
        }


def candidate_powers(balance: float) -> list[float]:
    """The prior-correction powers tried: 0 to `balance` in steps of about PRIOR_POWER_STEP."""
    steps = max(1, round(balance / PRIOR_POWER_STEP))
    return [round(balance * i / steps, 4) for i in range(steps + 1)]


def count_ratios(labels: np.ndarray, head_probs: np.ndarray) -> np.ndarray:
    """Predicted / true total per class (NaN for a class with no true cells)."""
    classes = head_probs.shape[-1]
    true = np.bincount(labels, minlength=classes).astype(np.float64)
    predicted = np.bincount(predicted_classes(head_probs), minlength=classes)
    return np.asarray(np.divide(predicted, true, out=np.full(classes, np.nan), where=true > 0))


def count_bias(labels: np.ndarray, head_probs: np.ndarray) -> float:
    """Largest relative error of the predicted class totals: max over classes of |predicted/true - 1|."""
    return float(np.nanmax(np.abs(count_ratios(labels, head_probs) - 1.0)))


def fit_prior_correction(
    folds: Sequence[HeldOut],
    labels: np.ndarray,
    counts: dict[str, int],
    balance: float,
    classes: Sequence[str] | None = None,
) -> PriorCorrection:
    """The power in 0..balance whose corrected predictions on the folds' validation cells give class
    totals closest to the true ones (smallest `count_bias`; ties go to the smaller power).

    The full correction (power = balance) assumes calibrated probabilities; a network trained to
    convergence is over-confident, and the full power can over-correct: rare classes such as
    monocytes are then under-counted (`benchmarks/prior_correction.py` prints the sweep). A
    differential is a count, so the power is the one that counts right on held-out cells,
    measured, not assumed.
    """
    names = list(classes) if classes is not None else [c.value for c in CELL_CLASSES]
    truth = np.concatenate([labels[f.val_index] for f in folds])
    probs = np.concatenate([f.val_probs for f in folds])

    def bias(power: float) -> float:
        weights = prior_correction(counts, power, names)
        return count_bias(truth, apply_class_weights(probs, weights))

    power = min(candidate_powers(balance), key=bias)
    weights = prior_correction(counts, power, names)
    summary = summarize(
        [
            compute_metrics(labels[f.val_index], apply_class_weights(f.val_probs, weights), names)
            for f in folds
        ]
    )
    summary["count_bias"] = bias(power)
    return PriorCorrection(power, balance, weights, summary)
