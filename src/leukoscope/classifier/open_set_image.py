"""Cell intensity measures for the open-set score: what each light records inside discs around the cell.

The crop is centred on the nucleus (`pipeline/segmentation.py`), so a small disc holds mostly nucleus
and a larger one the whole cell. For each disc and each modality and channel, the measures are
quantiles of the model's normalised pixel values (the input it reads, after `Predictor.preprocess`):
the shape of the intensity histogram, which records how large, dense and even the nucleus is and how
the cytoplasm stains, whatever the orientation. A network trained on five classes keeps only what
separates those five; an erythroblast's small, dense, even nucleus or a blast's large pale one is
plain in these measures while its pooled features sit among lymphocytes or monocytes
(docs/models.md, "Unidentified cells").

Computed in NumPy from the normalised crops, so both backends (PyTorch, ONNX Runtime) score alike.
"""

from __future__ import annotations

import functools

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leukoscope.errors import ParameterError

DEFAULT_RADII = (10 / 48, 18 / 48)
"""Disc radii as fractions of the crop side: about the nucleus and about the whole cell."""
DEFAULT_QUANTILES = tuple(round((i + 0.5) / 17, 6) for i in range(17))
MAX_DISCS = 4
MAX_QUANTILES = 64


class CellIntensities(BaseModel):
    """Quantiles of each modality's normalised pixel values inside discs centred on the crop."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    radii: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RADII),
        min_length=1,
        max_length=MAX_DISCS,
        description="disc radii, fractions of the crop side",
    )
    quantiles: list[float] = Field(
        default_factory=lambda: list(DEFAULT_QUANTILES), min_length=1, max_length=MAX_QUANTILES
    )

    @field_validator("radii")
    @classmethod
    def _radii_in_crop(cls, radii: list[float]) -> list[float]:
        if any(not 0.0 < r <= 0.75 for r in radii):
            raise ValueError("disc radii must be in (0, 0.75] of the crop side")
        return radii

    @field_validator("quantiles")
    @classmethod
    def _quantiles_in_range(cls, quantiles: list[float]) -> list[float]:
        if any(not 0.0 < q < 1.0 for q in quantiles) or quantiles != sorted(quantiles):
            raise ValueError("quantiles must be increasing, in (0, 1)")
        return quantiles

    def measures(self, cells: np.ndarray) -> list[np.ndarray]:
        """Per disc, (B, M * C * quantiles) float64 from normalised crops (B, M, C, S, S)."""
        x = np.asarray(cells)
        if x.ndim != 5 or x.shape[3] != x.shape[4]:
            raise ParameterError(
                f"cell intensities need crops (B, M, C, S, S), got {list(x.shape)}"
            )
        out = []
        for radius in self.radii:
            inside = np.sort(x[..., _disc(x.shape[-1], radius)], axis=-1)  # (B, M, C, P)
            # np.quantile's default (linear) rule, on one sort for every quantile
            position = np.asarray(self.quantiles) * (inside.shape[-1] - 1)
            low = np.floor(position).astype(np.int64)
            high = np.minimum(low + 1, inside.shape[-1] - 1)
            weight = position - low
            below = inside[..., low].astype(np.float64)
            values = below + (inside[..., high].astype(np.float64) - below) * weight
            out.append(values.reshape(len(x), -1))
        return out


@functools.lru_cache(maxsize=32)
def _disc(side: int, radius: float) -> np.ndarray:
    """(side, side) bool: pixels whose centre lies within `radius` x side of the crop's centre."""
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    inside: np.ndarray = np.hypot(yy, xx) < radius * side
    if not inside.any():
        inside[side // 2, side // 2] = True
    inside.flags.writeable = False  # shared by every call (cached)
    return inside
