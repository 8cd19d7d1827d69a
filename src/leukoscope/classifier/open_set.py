"""The open-set score: how unlike every class of its model a cell is, and the threshold that flags it.

A model names one of its classes for every cell; blood holds nucleated cells it never saw (immature
granulocytes, erythroblasts, blasts). The score is fitted on held-out cells of the model's own classes
and stored with the model (`ModelMeta.open_set`); a cell scoring above the threshold is flagged
"unidentified" for review and left out of the differential (`results/counts.py`).

Each part of the score is a squared Mahalanobis distance to the nearest class mean, with one
covariance shared by the classes (Lee et al., NeurIPS 2018), after a reduction to the leading
principal components of the held-out cells; a part's `projection` maps its measures straight to
whitened coordinates, so the distance is ``min_k |x W - m_k|^2``.

- `mahalanobis`: one part, the network's pooled features (what its heads read, an output of the
  exported graph), 64 components. The threshold is the (1 - `target_flag_rate`) quantile of the score
  on the held-out cells.
- `mahalanobis+intensity` (fits made now): that part plus one per disc of the cell's intensity
  measures (`open_set_image.py`, 32 components each). Each part is standardised, ``(d - median) /
  spread`` with spread the (1 - rate) quantile minus the median, and the parts are summed (Lee et al.
  combine layers the same way, with weights that need outliers to fit; equal weights need none). Medians,
  spreads and the threshold come from out-of-fold distances (the held-out cells dealt into two halves
  per class, each half scored by the fit on the other), which keep the in-sample optimism of a
  64-dimension fit out of the threshold and leave a margin for samples unlike those fitted on.

About `target_flag_rate` of normal cells are flagged. docs/models.md ("Unidentified cells") compares
the scores measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leukoscope.classifier.open_set_image import CellIntensities
from leukoscope.errors import ParameterError

DEFAULT_FLAG_RATE = 0.05
DEFAULT_DIMS = 64
DEFAULT_INTENSITY_DIMS = 32
SHRINKAGE = 0.05
FOLDS = 2
MAX_MEASURES = 16384
MAX_DIMS = 512
MAX_CLASSES = 64


class Mahalanobis(BaseModel):
    """One part of the score: offset, whitening projection and class means, and its scale."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    offset: list[float] = Field(max_length=MAX_MEASURES, description="subtracted first")
    projection: list[list[float]] = Field(max_length=MAX_MEASURES, description="PCA then whitening")
    means: list[list[float]] = Field(max_length=MAX_CLASSES, description="per class, projected")
    median: float = 0.0
    spread: float = Field(default=1.0, gt=0.0)

    @model_validator(mode="after")
    def _shapes(self) -> Mahalanobis:
        _check_shapes(self.offset, self.projection, self.means)
        return self

    def distances(self, measures: np.ndarray) -> np.ndarray:
        """Squared distance of each cell (B, F) -> (B,) to the nearest class mean."""
        return _distances(measures, self.offset, self.projection, self.means)

    def standardised(self, measures: np.ndarray) -> np.ndarray:
        """``(distance - median) / spread``: 0 at the median held-out cell, 1 at the threshold's share."""
        return (self.distances(measures) - self.median) / self.spread


class OpenSet(BaseModel):
    """A fitted open-set score and its threshold (stored in the checkpoint metadata)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    score: Literal["mahalanobis", "mahalanobis+intensity"] = "mahalanobis"
    threshold: float
    target_flag_rate: float = Field(gt=0.0, lt=1.0)
    flag_rate: float = Field(ge=0.0, le=1.0, description="measured on the held-out cells")
    offset: list[float] = Field(
        max_length=MAX_MEASURES, description="features' mean, subtracted before projecting"
    )
    projection: list[list[float]] = Field(
        max_length=MAX_MEASURES, description="features x dims: PCA then whitening"
    )
    means: list[list[float]] = Field(
        max_length=MAX_CLASSES, description="per class, in the projected space"
    )
    cells: int = Field(ge=1, description="held-out cells it was fitted on")
    source: str = Field(default="", max_length=2000)
    feature_scale: tuple[float, float] | None = Field(
        default=None, description="median and spread of the features' part (with intensities)"
    )
    intensities: CellIntensities | None = None
    intensity_parts: list[Mahalanobis] = Field(
        default_factory=list, max_length=4, description="one per disc of `intensities`"
    )

    @model_validator(mode="after")
    def _consistent(self) -> OpenSet:
        _check_shapes(self.offset, self.projection, self.means)
        combined = self.score == "mahalanobis+intensity"
        if combined != (self.intensities is not None) or combined != (
            self.feature_scale is not None
        ):
            raise ValueError("a mahalanobis+intensity score has intensities and a feature scale")
        if self.intensities is not None:
            if len(self.intensity_parts) != len(self.intensities.radii):
                raise ValueError("need one intensity part per disc")
            if self.feature_scale is not None and self.feature_scale[1] <= 0:
                raise ValueError("the feature scale's spread must be positive")
            if any(len(p.means) != len(self.means) for p in self.intensity_parts):
                raise ValueError("every part needs one mean per class")
        elif self.intensity_parts:
            raise ValueError("intensity parts without intensities")
        return self

    @property
    def needs_cells(self) -> bool:
        """Whether the score reads the normalised crops as well as the features."""
        return self.intensities is not None

    def feature_distances(self, features: np.ndarray) -> np.ndarray:
        """The features' part alone: squared distance (B, F) -> (B,) to the nearest class mean."""
        return _distances(features, self.offset, self.projection, self.means)

    def scores(self, features: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        """Score of each cell from its features (B, F) and, for `mahalanobis+intensity`, its
        normalised crops (B, M, C, S, S) -> (B,)."""
        distances = self.feature_distances(features)
        if self.intensities is None or self.feature_scale is None:
            return distances
        if cells is None:
            raise ParameterError("this open-set score reads the cells' crops as well as features")
        median, spread = self.feature_scale
        total = (distances - median) / spread
        for part, measures in zip(
            self.intensity_parts, self.intensities.measures(cells), strict=True
        ):
            total = total + part.standardised(measures)
        return np.asarray(total)

    def reasons(self, scores: np.ndarray) -> list[str]:
        """`unidentified: ...` for cells above the threshold, "" for the others."""
        digits = 0 if self.intensities is None else 2
        return [
            f"unidentified: open-set score {s:.{digits}f} > {self.threshold:.{digits}f}"
            if s > self.threshold
            else ""
            for s in np.asarray(scores, dtype=np.float64)
        ]


def fit_open_set(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    classes: int,
    target_flag_rate: float = DEFAULT_FLAG_RATE,
    dims: int = DEFAULT_DIMS,
    source: str = "",
    intensities: CellIntensities | None = None,
    measures: Sequence[np.ndarray] = (),
    intensity_dims: int = DEFAULT_INTENSITY_DIMS,
) -> OpenSet:
    """Fit the score on held-out cells of the model's classes (`labels`: class index per cell).

    Without `intensities`: the `mahalanobis` score of the features. With them: `mahalanobis+intensity`,
    `measures` being `intensities.measures(...)` of the same cells, one array per disc."""
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 < target_flag_rate < 1.0:
        raise ParameterError(f"open-set flag rate must be in (0, 1), got {target_flag_rate}")
    if x.ndim != 2 or len(x) != len(labels) or len(x) < 20 or x.shape[1] == 0:
        raise ParameterError(f"the open-set fit needs at least 20 held-out cells, got {len(x)}")
    if intensities is not None and (
        len(measures) != len(intensities.radii) or any(len(m) != len(x) for m in measures)
    ):
        raise ParameterError("the open-set fit needs one intensity measure per disc and cell")
    offset, projection, means = _fit_part(x, labels, classes, dims)
    fitted = OpenSet(
        threshold=0.0,
        target_flag_rate=target_flag_rate,
        flag_rate=0.0,
        offset=_rounded(offset),
        projection=[_rounded(row) for row in projection],
        means=[_rounded(m) for m in means],
        cells=len(x),
        source=source,
    )
    if intensities is None:
        scores = fitted.scores(x)
    else:
        parts: list[np.ndarray] = [x, *(np.asarray(m, dtype=np.float64) for m in measures)]
        part_dims = [dims] + [intensity_dims] * len(measures)
        folds = _folds(labels, FOLDS)
        held = [
            _out_of_fold(p, labels, classes, d, folds)
            for p, d in zip(parts, part_dims, strict=True)
        ]
        scales = [_scale(d, target_flag_rate) for d in held]
        scores = sum(
            ((d - m) / s for d, (m, s) in zip(held, scales, strict=True)), np.zeros(len(x))
        )
        fitted = fitted.model_copy(
            update={
                "score": "mahalanobis+intensity",
                "feature_scale": scales[0],
                "intensities": intensities,
                "intensity_parts": [
                    _part(p, labels, classes, d, scale)
                    for p, d, scale in zip(parts[1:], part_dims[1:], scales[1:], strict=True)
                ],
            }
        )
        fitted = OpenSet.model_validate(fitted.model_dump())
    threshold = float(np.quantile(scores, 1.0 - target_flag_rate))
    return fitted.model_copy(
        update={"threshold": threshold, "flag_rate": float(np.mean(scores > threshold))}
    )


def _fit_part(
    x: np.ndarray, labels: np.ndarray, classes: int, dims: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(offset, projection, whitened class means) of one part fitted on (x, labels)."""
    offset = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - offset, full_matrices=False)
    pca = vt[: min(dims, len(vt))].T
    z = (x - offset) @ pca
    centred = np.zeros_like(z)
    means = []
    for k in range(classes):
        chosen = labels == k
        mu = z[chosen].mean(axis=0) if chosen.any() else z.mean(axis=0)
        centred[chosen] = z[chosen] - mu
        means.append(mu)
    cov = centred.T @ centred / max(len(z) - classes, 1)
    cov = (1.0 - SHRINKAGE) * cov + SHRINKAGE * np.diag(np.diag(cov))
    cov += 1e-9 * np.eye(len(cov)) * max(float(np.trace(cov)), 1e-12)
    whiten = np.linalg.cholesky(np.linalg.inv(cov))  # P = L L^T: |(z - m) L|^2 = Mahalanobis
    return offset, pca @ whiten, [m @ whiten for m in means]


def _part(
    x: np.ndarray, labels: np.ndarray, classes: int, dims: int, scale: tuple[float, float]
) -> Mahalanobis:
    offset, projection, means = _fit_part(x, labels, classes, dims)
    return Mahalanobis(
        offset=_rounded(offset),
        projection=[_rounded(row) for row in projection],
        means=[_rounded(m) for m in means],
        median=scale[0],
        spread=scale[1],
    )


def _folds(labels: np.ndarray, folds: int) -> np.ndarray:
    """Fold of each cell: every class dealt round the folds in a fixed shuffled order."""
    rng = np.random.default_rng(20_181)
    fold = np.zeros(len(labels), np.int64)
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        fold[members] = np.arange(len(members)) % folds
    return fold


def _out_of_fold(
    x: np.ndarray, labels: np.ndarray, classes: int, dims: int, folds: np.ndarray
) -> np.ndarray:
    """Each cell's distance under the part fitted on the other folds."""
    out = np.zeros(len(x))
    for f in np.unique(folds):
        test = folds == f
        offset, projection, means = _fit_part(x[~test], labels[~test], classes, dims)
        out[test] = _distances(x[test], offset.tolist(), projection.tolist(), means)
    return out


def _scale(distances: np.ndarray, rate: float) -> tuple[float, float]:
    """(median, spread): spread is the (1 - rate) quantile minus the median."""
    median = float(np.median(distances))
    spread = float(np.quantile(distances, 1.0 - rate)) - median
    return float(f"{median:.7g}"), float(f"{max(spread, 1e-9):.7g}")


def _distances(
    measures: np.ndarray,
    offset: Sequence[float] | np.ndarray,
    projection: Sequence[Sequence[float]] | np.ndarray,
    means: Sequence[Sequence[float]] | Sequence[np.ndarray],
) -> np.ndarray:
    x = np.asarray(measures, dtype=np.float64)
    w = np.asarray(projection, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ParameterError(
            f"the open-set fit reads {w.shape[0]} features; got cells of shape {list(x.shape)}"
            " (export the model again: `leukoscope export`)"
        )
    if not len(x):
        return np.zeros(0)
    z = (x - np.asarray(offset, dtype=np.float64)) @ w
    diff = z[:, None, :] - np.asarray(means, dtype=np.float64)[None, :, :]
    return np.asarray((diff**2).sum(axis=2).min(axis=1))


def _check_shapes(
    offset: list[float], projection: list[list[float]], means: list[list[float]]
) -> None:
    dims = len(projection[0]) if projection else 0
    if len(offset) != len(projection) or not 0 < dims <= MAX_DIMS:
        raise ValueError(f"projection must be {len(offset)} x (1..{MAX_DIMS})")
    if any(len(row) != dims for row in projection) or any(len(m) != dims for m in means):
        raise ValueError("every projection row and class mean needs the same dimensions")


def _rounded(values: np.ndarray) -> list[float]:
    """Seven significant digits: the metadata stays small, the score changes by < 1e-5."""
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64)]
