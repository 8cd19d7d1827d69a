"""The open-set score: how unlike every class of its model a cell is, and the threshold that flags it.

A model names one of its classes for every cell; blood holds nucleated cells it never saw (immature
granulocytes, erythroblasts, blasts). The score is fitted on held-out cells of the model's own classes
and stored with the model (`ModelMeta.open_set`); a cell scoring above the threshold is flagged
"unidentified" for review and left out of the differential (`results/counts.py`).

The score is the squared Mahalanobis distance, in the network's feature space (the pooled features its
heads read, an output of the exported graph), to the nearest class mean, with one covariance shared by
the classes (Lee et al., NeurIPS 2018). The features are first reduced to their `dims` leading
principal components of the held-out cells; the stored `projection` maps a feature vector straight to
whitened coordinates, so the score is ``min_k |x W - m_k|^2``. The threshold is the (1 -
`target_flag_rate`) quantile of the score on the held-out cells: about that share of normal cells is
flagged. docs/models.md ("Unidentified cells") compares it with scores from the probabilities alone.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from leukoscope.errors import ParameterError

DEFAULT_FLAG_RATE = 0.05
DEFAULT_DIMS = 64
SHRINKAGE = 0.05


class OpenSet(BaseModel):
    """A fitted open-set score and its threshold (stored in the checkpoint metadata)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    score: str = "mahalanobis"
    threshold: float
    target_flag_rate: float = Field(gt=0.0, lt=1.0)
    flag_rate: float = Field(ge=0.0, le=1.0, description="measured on the held-out cells")
    offset: list[float] = Field(description="features' mean, subtracted before projecting")
    projection: list[list[float]] = Field(description="features x dims: PCA then whitening")
    means: list[list[float]] = Field(description="per class, in the projected space")
    cells: int = Field(ge=1, description="held-out cells it was fitted on")
    source: str = ""

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Score of each cell from its features (B, F) -> (B,)."""
        x = np.asarray(features, dtype=np.float64)
        w = np.asarray(self.projection, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != w.shape[0]:
            raise ParameterError(
                f"the open-set fit reads {w.shape[0]} features; got cells of shape {list(x.shape)}"
                " (export the model again: `leukoscope export`)"
            )
        z = (x - np.asarray(self.offset)) @ w
        diff = z[:, None, :] - np.asarray(self.means)[None, :, :]
        return np.asarray((diff**2).sum(axis=2).min(axis=1)) if len(z) else np.zeros(0)

    def reasons(self, scores: np.ndarray) -> list[str]:
        """`unidentified: ...` for cells above the threshold, "" for the others."""
        return [
            f"unidentified: open-set score {s:.0f} > {self.threshold:.0f}"
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
) -> OpenSet:
    """Fit the score on held-out cells of the model's classes (`labels`: class index per cell)."""
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 < target_flag_rate < 1.0:
        raise ParameterError(f"open-set flag rate must be in (0, 1), got {target_flag_rate}")
    if x.ndim != 2 or len(x) != len(labels) or len(x) < 20 or x.shape[1] == 0:
        raise ParameterError(f"the open-set fit needs at least 20 held-out cells, got {len(x)}")
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
    projection = pca @ whiten
    fitted = OpenSet(
        threshold=0.0,
        target_flag_rate=target_flag_rate,
        flag_rate=0.0,
        offset=_rounded(offset),
        projection=[_rounded(row) for row in projection],
        means=[_rounded(m @ whiten) for m in means],
        cells=len(x),
        source=source,
    )
    scores = fitted.scores(x)
    threshold = float(np.quantile(scores, 1.0 - target_flag_rate))
    return fitted.model_copy(
        update={"threshold": threshold, "flag_rate": float(np.mean(scores > threshold))}
    )


def _rounded(values: np.ndarray) -> list[float]:
    """Seven significant digits: the metadata stays small, the score changes by < 1e-5."""
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64)]
