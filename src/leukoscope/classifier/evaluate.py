"""Metrics of a classifier on labelled cells: per fold, mean +/- std over folds, confusion matrices.

Everything is computed from the confusion matrix, so no metric depends on which classes happen to
be predicted. Macro figures average over the classes present in the labels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leukoscope.atomic import atomic_write_figure, atomic_write_text
from leukoscope.classifier.batches import BatchPreparer
from leukoscope.classifier.data import load_cells, scan_dataset
from leukoscope.errors import DatasetError
from leukoscope.types import CELL_CLASSES

CLASS_NAMES: tuple[str, ...] = tuple(c.value for c in CELL_CLASSES)
SCALARS = ("accuracy", "macro_f1", "balanced_accuracy")


def confusion(
    labels: np.ndarray, predicted: np.ndarray, size: int = len(CELL_CLASSES)
) -> np.ndarray:
    """Counts (true class, predicted class) over `size` classes (the five by default)."""
    flat = np.asarray(labels, dtype=np.int64) * size + np.asarray(predicted, dtype=np.int64)
    return np.bincount(flat, minlength=size * size).reshape(size, size)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    ratio = np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)
    return np.asarray(ratio, dtype=np.float64)


def predicted_classes(head_probs: np.ndarray) -> np.ndarray:
    """The class called for each cell: argmax of the mean of the heads' softmax (N, heads, classes)."""
    return np.asarray(head_probs.mean(axis=1).argmax(axis=1))


def class_names(metrics: dict[str, Any]) -> list[str]:
    """The classes a metrics dict reports on, in the model's order (the keys of its per-class
    figures)."""
    return list(metrics["precision"])


def compute_metrics(
    labels: np.ndarray, head_probs: np.ndarray, classes: Sequence[str] = CLASS_NAMES
) -> dict[str, Any]:
    """Metrics of per-head probabilities (N, heads, classes) against labels (N,) indexing `classes`
    (the model's class names; the five by default).

    The prediction is the argmax of the mean of the heads' softmax; with several heads, each head's
    own accuracy and how often the heads disagree (not all the same argmax) are added.
    """
    if head_probs.ndim != 3 or head_probs.shape[0] != len(labels):
        raise ValueError(f"expected probabilities (N, heads, classes), got {head_probs.shape}")
    if head_probs.shape[2] != len(classes):
        raise ValueError(f"{head_probs.shape[2]} class probabilities for {len(classes)} classes")
    names = list(classes)
    predicted = predicted_classes(head_probs)
    matrix = confusion(labels, predicted, len(names))
    diag = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = _ratio(diag, matrix.sum(axis=0))
    recall = _ratio(diag, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = support > 0
    metrics: dict[str, Any] = {
        "cells": len(labels),
        "accuracy": float(diag.sum() / max(len(labels), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "precision": dict(zip(names, precision.tolist(), strict=True)),
        "recall": dict(zip(names, recall.tolist(), strict=True)),
        "f1": dict(zip(names, f1.tolist(), strict=True)),
        "support": dict(zip(names, support.tolist(), strict=True)),
        "confusion": matrix.tolist(),
    }
    heads = head_probs.shape[1]
    if heads > 1:
        per_head = head_probs.argmax(axis=2)
        metrics["head_accuracy"] = [float((per_head[:, h] == labels).mean()) for h in range(heads)]
        metrics["head_disagreement"] = float((per_head != per_head[:, :1]).any(axis=1).mean())
    return metrics


def _mean_std(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": float(array.mean()), "std": std}


def summarize(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (ddof=1) over folds; confusion matrices summed."""
    if not folds:
        raise ValueError("no folds to summarize")
    summary: dict[str, Any] = {"folds": len(folds), "cells": sum(f["cells"] for f in folds)}
    for key in SCALARS:
        summary[key] = _mean_std([f[key] for f in folds])
    summary["per_fold"] = {key: [f[key] for f in folds] for key in SCALARS}
    for key in ("precision", "recall"):
        summary[key] = {c: _mean_std([f[key][c] for f in folds]) for c in class_names(folds[0])}
    summary["confusion"] = np.sum([f["confusion"] for f in folds], axis=0).tolist()
    if "head_accuracy" in folds[0]:
        heads = len(folds[0]["head_accuracy"])
        summary["head_accuracy"] = [
            _mean_std([f["head_accuracy"][h] for f in folds]) for h in range(heads)
        ]
        summary["head_disagreement"] = _mean_std([f["head_disagreement"] for f in folds])
    return summary


def percent(stat: dict[str, float]) -> str:
    """'97.61 ± 0.42' from a {'mean', 'std'} in [0, 1] units."""
    return f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"


def metrics_markdown(metrics: dict[str, Any], head_names: list[str] | None = None) -> str:
    """Markdown of one result: a fold's metrics or a summary over folds (mean ± std)."""

    def show(value: Any) -> str:
        return percent(value) if isinstance(value, dict) else f"{100 * value:.2f}"

    lines = ["| metric | % |", "| --- | --- |"]
    lines += [f"| {key} | {show(metrics[key])} |" for key in SCALARS]
    extra = [key for key in ("f1", "support") if key in metrics]  # one model's figures
    head = "".join(" F1 % |" if key == "f1" else " support |" for key in extra)
    lines += ["", f"| class | precision % | recall % |{head}", "| --- " * (3 + len(extra)) + "|"]
    for c in class_names(metrics):
        cells = [show(metrics["precision"][c]), show(metrics["recall"][c])]
        cells += [show(metrics[k][c]) if k == "f1" else str(metrics[k][c]) for k in extra]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    if "head_accuracy" in metrics:
        names = head_names or [str(h) for h in range(len(metrics["head_accuracy"]))]
        lines += ["", "| head | accuracy % |", "| --- | --- |"]
        lines += [
            f"| {n} | {show(a)} |" for n, a in zip(names, metrics["head_accuracy"], strict=True)
        ]
        lines += ["", f"Head disagreement: {show(metrics['head_disagreement'])} % of cells"]
    lines += ["", "Confusion (rows true, columns predicted):", "", confusion_markdown(metrics)]
    return "\n".join(lines) + "\n"


def confusion_markdown(metrics: dict[str, Any]) -> str:
    """The confusion matrix as a Markdown table."""
    names = class_names(metrics)
    lines = ["| true \\ predicted | " + " | ".join(names) + " |"]
    lines.append("| --- " * (len(names) + 1) + "|")
    for name, row in zip(names, metrics["confusion"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |")
    return "\n".join(lines)


def save_confusion_png(
    matrix: list[list[int]], path: Path, title: str, classes: Sequence[str] = CLASS_NAMES
) -> None:
    """Write the confusion matrix (counts, row-normalised colours) over `classes` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = max(4.0, 0.55 * len(classes) + 1.2)
    fig, ax = plt.subplots(figsize=(side + 0.6, side), dpi=120)
    try:
        ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        ticks = range(len(classes))
        ax.set_xticks(list(ticks), list(classes))
        ax.set_yticks(list(ticks), list(classes))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
        for i in ticks:
            for j in ticks:
                colour = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", color=colour)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_figure(fig, path)
    finally:
        plt.close(fig)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through the one writer (atomic; a regular file or a new path only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_report(
    out_dir: Path,
    name: str,
    metrics: dict[str, Any],
    title: str,
    head_names: list[str] | None = None,
) -> None:
    """`<name>.json`, `<name>.md` and `<name>_confusion.png` in `out_dir`."""
    write_json(out_dir / f"{name}.json", metrics)
    text = f"# {title}\n\n{metrics_markdown(metrics, head_names)}"
    atomic_write_text(out_dir / f"{name}.md", text)
    png = out_dir / f"{name}_confusion.png"
    save_confusion_png(metrics["confusion"], png, title, class_names(metrics))


EVAL_MEMORY_BYTES = 1 << 30
"""What one evaluation step may hold (1 GiB): its cells' images, their float input and the network's
activations; the dataset is read and evaluated that many cells at a time."""
ACTIVATION_BYTES_PER_PX = 160
"""Bytes one input pixel of one modality costs while the network runs (largest layers, float32)."""


def cells_per_step(modalities: int, channels: int, input_size: int, most: int = 256) -> int:
    """How many cells one evaluation step loads and runs within EVAL_MEMORY_BYTES (1 at least,
    `most` at most)."""
    pixels = modalities * input_size * input_size
    per_cell = pixels * (channels * (2 + 2 + 4) + ACTIVATION_BYTES_PER_PX)  # file, copy, float
    return max(1, min(most, EVAL_MEMORY_BYTES // per_cell))


def predict(
    model: torch.nn.Module, images: np.ndarray, preparer: BatchPreparer, batch_size: int = 256
) -> np.ndarray:
    """Per-head softmax (N, heads, classes) of `images` (N, M, C, H, W), every head on one cell."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            logits = model(preparer(images[start : start + batch_size]))
            outputs.append(logits.float().softmax(dim=-1).cpu().numpy())
    return np.concatenate(outputs)


def apply_class_weights(head_probs: np.ndarray, weights: list[float] | None) -> np.ndarray:
    """Per-head probabilities times the checkpoint's prior-correction weights, renormalised
    (what the Predictor does); unchanged when there are none."""
    if weights is None:
        return head_probs
    weighted = head_probs * np.asarray(weights, dtype=head_probs.dtype)
    return np.asarray(weighted / weighted.sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class Evaluation:
    """A saved model's figures on a labelled dataset: raw argmax and, when the model carries a prior
    correction, corrected as the pipeline applies it (`pipeline` is the reading the pipeline uses)."""

    raw: dict[str, Any]
    corrected: dict[str, Any] | None
    modalities: list[str]
    cell_ids: tuple[str, ...] = ()  # per cell, in dataset order
    labels: np.ndarray | None = None  # (N,) true class index
    raw_probs: np.ndarray | None = None  # (N, heads, classes) softmax
    pipeline_probs: np.ndarray | None = None  # (N, heads, classes) as the pipeline reads them

    @property
    def pipeline(self) -> dict[str, Any]:
        """The metrics of the predictions the pipeline makes with this model."""
        return self.corrected if self.corrected is not None else self.raw

    @property
    def pipeline_reading(self) -> str:
        """Which reading the pipeline uses, in words."""
        return "prior-corrected" if self.corrected is not None else "raw (no prior correction)"


def evaluate_checkpoint(
    model_path: Path, data_root: Path, device: torch.device, batch_size: int = 256
) -> Evaluation:
    """Figures of a saved model on a labelled dataset: raw, and with its prior correction."""
    from leukoscope.classifier.checkpoint import load_checkpoint

    model, meta = load_checkpoint(Path(model_path))
    modalities = [m.value for m in meta.modalities]
    names = [c.value for c in meta.classes]
    root = Path(data_root)
    chosen, relative, labels = scan_dataset(root, meta.modalities, meta.classes)
    mean = np.asarray(meta.norm_mean, dtype=np.float32)
    std = np.asarray(meta.norm_std, dtype=np.float32)
    model = model.to(device)
    step = cells_per_step(len(chosen), meta.in_chans, meta.input_size, batch_size)
    parts: list[np.ndarray] = []
    for start in range(0, len(relative), step):  # never the whole dataset in memory at once
        part = load_cells(root, meta.input_size, chosen, relative[start : start + step],
                          labels[start : start + step])  # fmt: skip
        if part.in_chans != meta.in_chans:
            raise DatasetError(
                f"{data_root}: images have {part.in_chans} channel(s), the model expects "
                f"{meta.in_chans}"
            )
        preparer = BatchPreparer(mean, std, part.max_value, device)
        parts.append(predict(model, part.images, preparer, step))
    probs = np.concatenate(parts)
    cell_ids = tuple(Path(rel).stem for rel in relative)
    raw = compute_metrics(labels, probs, names)
    corrected = None
    read = probs
    if meta.class_weights is not None:
        read = apply_class_weights(probs, meta.class_weights)
        corrected = compute_metrics(labels, read, names)
    return Evaluation(raw, corrected, modalities, cell_ids, labels, probs, read)
