"""Per-cell predictions of an evaluation as CSV: what `leukoscope evaluate --out` writes beside its
report, one row per cell, so a user can find the cells the model gets wrong.

Columns: cell_id, true_class, predicted_class (the reading the pipeline uses), correct (0/1),
p_NEU..p_BAS and one p_ column per further class of the model (that reading's probabilities,
mean over the heads), raw_predicted_class (raw argmax),
heads_agree (0/1: every head called the same class).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from leukoscope.atomic import atomic_write_text, make_folder
from leukoscope.classifier.evaluate import (
    CLASS_NAMES,
    Evaluation,
    class_names,
    predicted_classes,
)
from leukoscope.errors import StorageError
from leukoscope.spreadsheet import SafeWriter


def columns(classes: tuple[str, ...] | list[str] = CLASS_NAMES) -> tuple[str, ...]:
    """The CSV's columns for a model of `classes` (one probability column per class)."""
    return (
        "cell_id",
        "true_class",
        "predicted_class",
        "correct",
        *(f"p_{name}" for name in classes),
        "raw_predicted_class",
        "heads_agree",
    )


COLUMNS = columns()
"""The columns for a model of the five classes."""


def predictions_csv(evaluation: Evaluation) -> str:
    """The CSV text (header + one row per cell, dataset order)."""
    if evaluation.labels is None or evaluation.pipeline_probs is None:
        raise StorageError("this evaluation kept no per-cell predictions")
    read = evaluation.pipeline_probs
    raw = evaluation.raw_probs if evaluation.raw_probs is not None else read
    mean = read.mean(axis=1)
    called = predicted_classes(read)
    raw_called = predicted_classes(raw)
    per_head = read.argmax(axis=2)
    agree = (per_head == per_head[:, :1]).all(axis=1)
    names = class_names(evaluation.raw)
    out = io.StringIO()
    writer = SafeWriter(out)  # a cell id a spreadsheet would run as a formula is neutralised
    writer.writerow(columns(names))
    for i, cell_id in enumerate(evaluation.cell_ids):
        truth, guess = int(evaluation.labels[i]), int(called[i])
        writer.writerow(
            [
                cell_id,
                names[truth],
                names[guess],
                int(truth == guess),
                *(f"{p:.6f}" for p in np.asarray(mean[i], dtype=np.float64)),
                names[int(raw_called[i])],
                int(agree[i]),
            ]
        )
    return out.getvalue()


def write_predictions(path: Path, evaluation: Evaluation) -> Path:
    """Write the CSV through the one writer (atomic; a regular file or a new path only);
    StorageError when it cannot be."""
    text = predictions_csv(evaluation)
    make_folder(path.parent)
    return atomic_write_text(path, text)
