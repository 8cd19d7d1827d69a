"""Fit a model's open-set score on held-out cells and store it in its checkpoint (weights unchanged).

`train` holds out a share of the cells from its final fit (`held_out_split`) and fits the score of
the model it ships on them (`fit_checkpoint_on`); `benchmarks/open_set.py --fit` fits a finished
model on cells cut by the pipeline from simulated acquisitions (`refit_checkpoint`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leukoscope.classifier.checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.open_set import DEFAULT_FLAG_RATE, OpenSet, fit_open_set
from leukoscope.classifier.open_set_image import CellIntensities
from leukoscope.errors import ParameterError


def cell_features(predictor: Predictor, crops: np.ndarray, batch: int = 256) -> np.ndarray:
    """The pooled features (B, F) the heads read, for raw crops (B, M, H, W)."""
    parts = [predictor.predict(crops[i : i + batch]).features for i in range(0, len(crops), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def cell_intensities(
    predictor: Predictor, crops: np.ndarray, intensities: CellIntensities, batch: int = 256
) -> list[np.ndarray]:
    """`intensities.measures` of raw crops (B, M, H, W), as the predictor normalises them."""
    parts = [
        intensities.measures(predictor.preprocess(crops[i : i + batch]))
        for i in range(0, len(crops), batch)
    ]
    return [np.concatenate([p[d] for p in parts]) for d in range(len(intensities.radii))]


def fit_for_model(
    predictor: Predictor,
    crops: np.ndarray,
    labels: np.ndarray,
    *,
    target_flag_rate: float = DEFAULT_FLAG_RATE,
    source: str = "",
) -> OpenSet:
    """The open-set fit of `predictor`'s model on held-out cells (`labels`: class indices): the
    `mahalanobis+intensity` score (`classifier/open_set.py`)."""
    features = cell_features(predictor, crops)
    if features.shape[1] == 0:
        raise ParameterError("the model's graph returns no features (export it again)")
    intensities = CellIntensities()
    return fit_open_set(
        features,
        labels,
        classes=len(predictor.meta.classes),
        target_flag_rate=target_flag_rate,
        source=source,
        intensities=intensities,
        measures=cell_intensities(predictor, crops, intensities),
    )


def refit_checkpoint(
    checkpoint: Path,
    crops: np.ndarray,
    labels: np.ndarray,
    *,
    target_flag_rate: float = DEFAULT_FLAG_RATE,
    source: str = "",
    threads: int = 0,
) -> ModelMeta:
    """Fit the open-set score of `checkpoint` and rewrite its metadata (the weights stay as they are;
    export the ONNX graph again afterwards: the file's digest changes). `threads` 0: every core."""
    model, meta = load_checkpoint(Path(checkpoint))
    predictor = Predictor.from_model(model, meta, "torch", threads=threads)
    fit = fit_for_model(predictor, crops, labels, target_flag_rate=target_flag_rate, source=source)
    new_meta = meta.model_copy(update={"open_set": fit})
    save_checkpoint(Path(checkpoint), model, new_meta)
    return new_meta


def held_out_split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) cell indices: `share` of each class held out, at least one cell of every
    class kept; sorted, the same for the same labels and seed."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 7_411])
    held: list[np.ndarray] = []
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        held.append(members[: min(int(round(share * len(members))), len(members) - 1)])
    out = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), out), out


def dataset_crops(images: np.ndarray) -> np.ndarray:
    """A training set's images (N, M, C, H, W) as the raw crops a Predictor takes."""
    return images[:, :, 0] if images.shape[2] == 1 else np.moveaxis(images, 2, -1)


def fit_checkpoint_on(
    checkpoint: Path,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    target_flag_rate: float,
    source: str,
    threads: int = 0,
) -> OpenSet:
    """Fit `checkpoint`'s open-set score on a training set's held-out `images` (N, M, C, H, W)."""
    if len(labels) < 20:
        raise ParameterError(
            f"the open-set fit needs at least 20 held-out cells, got {len(labels)}"
            " (raise --open-set-holdout, or --open-set-rate 0 for no fit)"
        )
    meta = refit_checkpoint(
        checkpoint,
        dataset_crops(images),
        labels,
        target_flag_rate=target_flag_rate,
        source=source,
        threads=threads,
    )
    assert meta.open_set is not None
    return meta.open_set
