"""The checkpoints a training run writes: a fold's or the final fit's model with its provenance, and
the model to ship (a checkpoint plus the cross-validation summary and the prior correction)."""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leukoscope import __version__
from leukoscope.classifier.data import CellDataset
from leukoscope.classifier.prior import PriorCorrection, prior_correction
from leukoscope.classifier.recipe import TrainConfig
from leukoscope.classifier.training_data import training_data


def command_line() -> str:
    return " ".join(["leukoscope", *sys.argv[1:]]) if sys.argv else ""


def provenance_of(
    config: TrainConfig, dataset: CellDataset, cells: int, **extra: Any
) -> dict[str, Any]:
    return {
        "command": command_line(),
        "dataset": str(dataset.root),
        "dataset_cells": len(dataset.labels),
        "dataset_class_counts": dataset.class_counts(),
        "trained_on_cells": cells,
        "training_data": training_data(
            dataset.root,
            [int(v) for v in dataset.labels],
            list(dataset.cell_ids),
            dataset.classes,
        ),
        "train_config": config.model_dump(mode="json"),
        "leukoscope_version": __version__,
        "torch_version": torch.__version__,
        "machine": platform.platform(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def save_model(
    path: Path,
    model: torch.nn.Module,
    config: TrainConfig,
    dataset: CellDataset,
    mean: np.ndarray,
    std: np.ndarray,
    metrics: dict[str, Any],
    provenance: dict[str, Any],
) -> None:
    """Write a checkpoint in the networks' format (weights + JSON metadata)."""
    from leukoscope.classifier.checkpoint import ModelMeta, save_checkpoint

    meta = ModelMeta(
        arch=config.arch,
        options={"width": config.width, **config.options},
        modalities=list(dataset.modalities),
        in_chans=dataset.in_chans,
        classes=list(dataset.classes),
        input_size=config.input_size,
        norm_mean=mean.tolist(),
        norm_std=std.tolist(),
        provenance=provenance,
        metrics=metrics,
        class_weights=prior_correction(
            dataset.class_counts(), config.balance, [c.value for c in dataset.classes]
        ),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model.cpu(), meta)


def ship_model(
    source: Path,
    out_dir: Path,
    summary: dict[str, Any],
    correction: PriorCorrection | None,
    **provenance: Any,
) -> Path:
    """`out_dir/model.pt`: the checkpoint `source` with the CV summary and the fitted prior
    correction (None: no balancing, so no correction) in its metadata."""
    from leukoscope.classifier.checkpoint import load_checkpoint, save_checkpoint

    model, meta = load_checkpoint(source)
    metrics: dict[str, Any] = {"cross_validation": summary}
    if correction is not None:
        metrics["cross_validation_prior_corrected"] = correction.summary
        metrics["prior_correction"] = correction.metadata()
    if meta.metrics:
        metrics["selected_fold"] = meta.metrics
    merged = {**meta.provenance, "command": command_line(), **provenance}
    weights = correction.weights if correction is not None else None
    update = {"metrics": metrics, "provenance": merged, "class_weights": weights}
    path = out_dir / "model.pt"
    save_checkpoint(path, model, meta.model_copy(update=update))
    return path
