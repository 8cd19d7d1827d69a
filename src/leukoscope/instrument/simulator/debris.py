"""Debris: small irregular fragments that are not cells (a hard case for segmentation).

A smear holds stain precipitate (dark purple granules of dried Romanowsky stain), red-cell fragments
(schistocytes, haemoglobin-coloured) and dust: 1-4 um across, irregular (drawn as two to four
overlapping soft ellipses), absorbing in bright field, with no nucleic acid (no fluorescence; they
only block a little of the plasma glow behind them). Bain, Blood Cells (5th ed.), ch. 1 (artefacts of
the film) and ch. 3 (fragments). Density: Poisson, `SampleParams.debris_per_1000um2` (default 0.15,
a modest clean film; raise it for dirty ones).

Debris come from their own random streams (6: where and what, 10: texture), so adding them leaves
every white cell, red cell, platelet and texture of a field exactly as it was. None lies on a white
cell. Listed in the ground truth apart from cells, never counted.

`OverlayPatch` is also how smudge cells (smudge.py) are drawn: a stain density map over the
background, absorbing in bright field (transmission x exp(-absorbance x density)) and emitting or
blocking in fluorescence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from leukoscope.instrument.simulator.contrast import hemoglobin_absorbance
from leukoscope.instrument.simulator.placement import Disc, clear_of
from leukoscope.instrument.simulator.truth import Debris
from leukoscope.types import MODALITIES, Modality, is_fluorescence

DEBRIS_KINDS = ("precipitate", "fragment", "dust")
_KIND_SHARE = (0.6, 0.25, 0.15)
_FRAGMENT_THICKNESS = 0.8  # red-cell fragment: haemoglobin thickness, relative to a red cell
# per light, absorbance of the core at darkness 1; fluorescence: share of the glow blocked
_ABSORBANCE: dict[str, dict[Modality, float]] = {
    # dried azure/eosin precipitate: dark purple, absorbs green and red most
    "precipitate": {
        Modality.COLOR1: 0.55,
        Modality.COLOR2: 1.10,
        Modality.COLOR3: 0.85,
        Modality.FLUORESCENCE: 0.35,
    },
    "fragment": {
        m: 1.0 - math.exp(-_FRAGMENT_THICKNESS * hemoglobin_absorbance(m))
        if is_fluorescence(m)
        else _FRAGMENT_THICKNESS * hemoglobin_absorbance(m)
        for m in MODALITIES
    },
    # dust, fibres: grey, absorbing every colour alike
    "dust": {
        Modality.COLOR1: 0.45,
        Modality.COLOR2: 0.45,
        Modality.COLOR3: 0.45,
        Modality.FLUORESCENCE: 0.40,
    },
}
DEBRIS_EMISSION = 0.01
"""Fluorescence of debris relative to a nucleus (1): no nucleic acid, a trace of bound dye."""


def draw_debris(
    rng: np.random.Generator,
    frame: tuple[int, int],
    per_px2: float,
    px_per_um: float,
    avoid: list[Disc],
) -> tuple[Debris, ...]:
    """Poisson many debris over the frame, none on a white cell (`avoid`: y, x, extent)."""
    count = int(rng.poisson(per_px2 * frame[0] * frame[1]))
    kept: list[Debris] = []
    for _ in range(count):
        y, x = float(rng.uniform(0, frame[0])), float(rng.uniform(0, frame[1]))
        radius = 0.5 * float(rng.uniform(1.0, 4.0)) * px_per_um
        kind = DEBRIS_KINDS[int(rng.choice(len(DEBRIS_KINDS), p=_KIND_SHARE))]
        darkness = float(rng.uniform(0.6, 1.2))
        blobs = []
        for _ in range(int(rng.integers(2, 5))):
            ry = radius * float(rng.uniform(0.3, 0.6))
            rx = ry * float(rng.uniform(0.5, 1.0))
            reach = max(radius - ry, 0.0)
            dist, angle = reach * math.sqrt(float(rng.uniform())), float(rng.uniform(0, math.tau))
            blobs.append(
                (dist * math.sin(angle), dist * math.cos(angle), ry, rx, float(rng.uniform(0, 3.2)))
            )
        if not clear_of(y, x, radius, avoid):
            continue
        kept.append(Debris(len(kept), (y, x), radius, kind, darkness, tuple(blobs)))
    return tuple(kept)


@dataclass(frozen=True)
class OverlayPatch:
    """Stain over the background on a small patch: density map and its optical constants.

    Bright field: the background is multiplied by exp(-absorbance x density). Fluorescence: a share
    `absorbance[FLUORESCENCE] x density` of the glow behind is blocked, `emission x density` added.
    """

    origin_yx: tuple[int, int]
    density: np.ndarray
    absorbance: dict[Modality, float]
    emission: float

    def alpha_premult(self, modality: Modality) -> tuple[np.ndarray, np.ndarray]:
        """Coverage (how much of the background is replaced) and premultiplied own signal."""
        a = self.absorbance[modality]
        if is_fluorescence(modality):
            alpha = np.clip(a * self.density, 0.0, 1.0).astype(np.float32)
            return alpha, (self.emission * self.density).astype(np.float32)
        alpha = (1.0 - np.exp(-a * self.density)).astype(np.float32)
        return alpha, np.zeros_like(alpha)


def patch_grid(
    centre_yx: tuple[float, float], reach: float
) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Origin and (y, x) coordinates relative to `centre_yx` of a patch covering `reach` px."""
    top = math.floor(centre_yx[0] - reach)
    left = math.floor(centre_yx[1] - reach)
    side = math.ceil(2 * reach) + 2
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    return (top, left), yy - np.float32(centre_yx[0] - top), xx - np.float32(centre_yx[1] - left)


def rasterise_debris(debris: Debris, rng: np.random.Generator) -> OverlayPatch:
    """The union of the debris' soft ellipses, grainy, at sub-pixel position."""
    origin, dy, dx = patch_grid(debris.centre_yx, debris.radius_px + 3)
    cover = np.zeros(dy.shape, np.float32)
    for by, bx, ry, rx, angle in debris.blobs:
        c, s = math.cos(angle), math.sin(angle)
        u = (dy - by) * c + (dx - bx) * s
        v = -(dy - by) * s + (dx - bx) * c
        rho = np.sqrt((u / ry) ** 2 + (v / rx) ** 2)  # 1 on the ellipse
        edge = np.clip((1.0 - rho) * min(ry, rx) + 0.5, 0.0, 1.0)
        np.maximum(cover, edge.astype(np.float32), out=cover)
    grain = rng.uniform(0.75, 1.25, cover.shape).astype(np.float32)
    density = (cover * grain * np.float32(debris.darkness)).astype(np.float32)
    return OverlayPatch(origin, density, _ABSORBANCE[debris.kind], DEBRIS_EMISSION)
