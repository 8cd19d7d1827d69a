"""Rasterise one white cell into small component maps (modality-independent), at sub-pixel position.

The maps are densities of the cell's constituents (footprint, nucleus, cytoplasm, granules, vacuoles,
edge); `contrast.py` turns them into what each light source shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from leukoscope.instrument.simulator.truth import WhiteCellShape

EDGE_PX = 1.2
"""Width of the soft edge of the cell outline and the nucleus, px."""


@dataclass(frozen=True)
class CellComponents:
    """Density maps of one cell on a patch whose top-left pixel is `origin_yx` in frame coordinates."""

    origin_yx: tuple[int, int]
    alpha: np.ndarray  # footprint 0..1 (occludes what lies beneath)
    nucleus: np.ndarray  # chromatin density
    cytoplasm: np.ndarray  # cytoplasm footprint 0..1 (alpha minus nucleus)
    granules: np.ndarray  # granule density
    vacuoles: np.ndarray  # vacuole density
    rim: np.ndarray  # refraction at the cell edge
    granule_kind: str
    shape: WhiteCellShape

    @property
    def size(self) -> tuple[int, int]:
        """Patch height and width."""
        return (int(self.alpha.shape[0]), int(self.alpha.shape[1]))


@lru_cache(maxsize=4)
def _texture_bank(sigma: float) -> np.ndarray:
    """A fixed 512x512 field of smooth unit-variance noise; cells take random windows of it."""
    rng = np.random.default_rng(20220706)
    raw = rng.standard_normal((512, 512)).astype(np.float32)
    smooth = np.asarray(cv2.GaussianBlur(raw, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101))
    smooth = (smooth / float(smooth.std())).astype(np.float32)
    smooth.setflags(write=False)
    return smooth


def _window(bank: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    y = int(rng.integers(0, bank.shape[0] - h))
    x = int(rng.integers(0, bank.shape[1] - w))
    return bank[y : y + h, x : x + w]


def _splat(
    points: np.ndarray, grid: tuple[int, int], centre: tuple[float, float], sigma: float
) -> np.ndarray:
    """Gaussian blobs at `points` (dy, dx, radius), peak height ~1 for a blob of the mean radius."""
    out = np.zeros(grid, np.float32)
    if points.shape[0] == 0:
        return out
    ys = np.rint(points[:, 0] + centre[0]).astype(np.intp)
    xs = np.rint(points[:, 1] + centre[1]).astype(np.intp)
    keep = (ys >= 0) & (ys < grid[0]) & (xs >= 0) & (xs < grid[1])
    weight = (points[:, 2] / max(float(points[:, 2].mean()), 1e-6)) ** 2
    np.add.at(out, (ys[keep], xs[keep]), weight[keep].astype(np.float32))
    blurred = np.asarray(cv2.GaussianBlur(out, (0, 0), sigma), dtype=np.float32)
    return np.asarray(blurred * np.float32(2.0 * math.pi * sigma * sigma))


def rasterise(
    shape: WhiteCellShape,
    centre_yx: tuple[float, float],
    rng: np.random.Generator,
    margin_px: int = 8,
) -> CellComponents:
    """Component maps of `shape` centred at `centre_yx` (frame coordinates, sub-pixel)."""
    reach = shape.extent_px + margin_px
    top, left = math.floor(centre_yx[0] - reach), math.floor(centre_yx[1] - reach)
    side = math.ceil(2 * reach) + 2
    cy, cx = centre_yx[0] - top, centre_yx[1] - left
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    yy -= np.float32(cy)
    xx -= np.float32(cx)
    dist = np.hypot(yy, xx)
    theta = np.arctan2(yy, xx)
    alpha = np.clip((shape.outline_radius(theta) - dist) / EDGE_PX + 0.5, 0.0, 1.0)
    alpha = alpha.astype(np.float32)

    mask = np.zeros((side, side), np.float32)
    for lobe in shape.lobes:
        c, s = math.cos(lobe.angle), math.sin(lobe.angle)
        u = (xx - lobe.dx) * c + (yy - lobe.dy) * s
        v = -(xx - lobe.dx) * s + (yy - lobe.dy) * c
        q = np.sqrt((u / lobe.rx) ** 2 + (v / lobe.ry) ** 2)
        soft = np.clip((1.0 - q) * min(lobe.rx, lobe.ry) / EDGE_PX + 0.5, 0.0, 1.0)
        np.maximum(mask, soft, out=mask)
    if shape.notch is not None:
        ny, nx, nr = shape.notch
        bite = np.clip((np.hypot(yy - ny, xx - nx) - nr) / EDGE_PX + 0.5, 0.0, 1.0)
        mask *= bite
    mask *= alpha

    grid = (side, side)
    fine = _window(_texture_bank(1.2), grid, rng)
    coarse = _window(_texture_bank(3.0), grid, rng)
    chromatin = 1.0 + shape.chromatin_contrast * (0.45 * fine + 0.25 * coarse)
    nucleus = mask * np.clip(chromatin, 0.1, None) * np.float32(shape.nucleus_density * shape.stain)
    if shape.nucleoli.shape[0]:  # nucleoli: pale round holes in the chromatin
        size = float(shape.nucleoli[:, 2].mean())
        holes = _splat(shape.nucleoli, (side, side), (cy, cx), max(0.8, 0.8 * size))
        nucleus = nucleus * np.clip(1.0 - 0.7 * holes, 0.2, 1.0)
    cytoplasm = np.clip(alpha - mask, 0.0, 1.0) * (1.0 + 0.15 * coarse)

    gsize = float(shape.granules[:, 2].mean()) if shape.granules.shape[0] else 1.0
    granules = _splat(shape.granules, grid, (cy, cx), max(0.6, 0.7 * gsize)) * alpha
    vsize = float(shape.vacuoles[:, 2].mean()) if shape.vacuoles.shape[0] else 1.0
    vacuoles = _splat(shape.vacuoles, grid, (cy, cx), max(0.8, 0.8 * vsize))
    vacuoles *= cytoplasm
    rim = 4.0 * alpha * (1.0 - alpha)
    return CellComponents(
        origin_yx=(top, left),
        alpha=alpha,
        nucleus=nucleus.astype(np.float32),
        cytoplasm=cytoplasm.astype(np.float32),
        granules=np.clip(granules, 0.0, 1.5).astype(np.float32),
        vacuoles=np.clip(vacuoles, 0.0, 1.0).astype(np.float32),
        rim=rim.astype(np.float32),
        granule_kind=shape.granule_kind,
        shape=shape,
    )
