"""Fit a model's open-set score on held-out cells and store it in its checkpoint (weights unchanged)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leukoscope.classifier.checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.open_set import DEFAULT_FLAG_RATE, OpenSet, fit_open_set
from leukoscope.errors import ParameterError


def cell_features(predictor: Predictor, crops: np.ndarray, batch: int = 256) -> np.ndarray:
    """The pooled features (B, F) the heads read, for raw crops (B, M, H, W)."""
    parts = [predictor.predict(crops[i : i + batch]).features for i in range(0, len(crops), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def fit_for_model(
    predictor: Predictor,
    crops: np.ndarray,
    labels: np.ndarray,
    *,
    target_flag_rate: float = DEFAULT_FLAG_RATE,
    source: str = "",
) -> OpenSet:
    """The open-set fit of `predictor`'s model on held-out cells (`labels`: class indices)."""
    features = cell_features(predictor, crops)
    if features.shape[1] == 0:
        raise ParameterError("the model's graph returns no features (export it again)")
    return fit_open_set(
        features,
        labels,
        classes=len(predictor.meta.classes),
        target_flag_rate=target_flag_rate,
        source=source,
    )


def refit_checkpoint(
    checkpoint: Path,
    crops: np.ndarray,
    labels: np.ndarray,
    *,
    target_flag_rate: float = DEFAULT_FLAG_RATE,
    source: str = "",
) -> ModelMeta:
    """Fit the open-set score of `checkpoint` and rewrite its metadata (the weights stay as they are;
    export the ONNX graph again afterwards: the file's digest changes)."""
    model, meta = load_checkpoint(Path(checkpoint))
    predictor = Predictor.from_model(model, meta, "torch", threads=0)
    fit = fit_for_model(predictor, crops, labels, target_flag_rate=target_flag_rate, source=source)
    new_meta = meta.model_copy(update={"open_set": fit})
    save_checkpoint(Path(checkpoint), model, new_meta)
    return new_meta
