"""Platelets: small (2-3 um) anucleate cell fragments between the red cells.

They are what a nuclear stain also lights up a little (young platelets hold RNA), so they are the
first hard case for segmentation: drawn here, listed in the ground truth as not white cells, and
never counted. Density from the real BCCD smears (median 0.6 per 1000 um^2,
docs/simulator.md "Realism against real smears"), size from Bain, Blood Cells (5th ed.), ch. 3:
2-3 um across, a granular purple centre (granulomere) in a paler rim (hyalomere).

Platelets come from their own random streams, so adding them leaves every white cell, red cell and
texture of a field exactly as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from leukoscope.instrument.simulator.contrast import platelet_signal
from leukoscope.instrument.simulator.placement import Disc, clear_of
from leukoscope.instrument.simulator.truth import Platelet
from leukoscope.types import Modality


def draw_platelets(
    rng: np.random.Generator,
    frame: tuple[int, int],
    per_px2: float,
    radius_px: float,
    avoid: list[Disc],
) -> tuple[Platelet, ...]:
    """Poisson many platelets over the frame, none on a white cell (`avoid`: y, x, extent)."""
    count = int(rng.poisson(per_px2 * frame[0] * frame[1]))
    ys = rng.uniform(0, frame[0], count)
    xs = rng.uniform(0, frame[1], count)
    radii = radius_px * rng.uniform(0.8, 1.25, count)
    kept: list[Platelet] = []
    for y, x, r in zip(ys.tolist(), xs.tolist(), radii.tolist(), strict=True):
        if not clear_of(y, x, r, avoid):
            continue
        kept.append(Platelet(len(kept), (y, x), r))
    return tuple(kept)


@dataclass(frozen=True)
class PlateletPatch:
    """A platelet rasterised on a small patch: coverage (alpha) and stain density maps."""

    origin_yx: tuple[int, int]
    alpha: np.ndarray
    density: np.ndarray

    def signal(self, modality: Modality) -> np.ndarray:
        """Transmission (bright-field) or emission (fluorescence) on the patch."""
        return platelet_signal(self.density, modality)


def rasterise_platelet(platelet: Platelet, rng: np.random.Generator) -> PlateletPatch:
    """A soft-edged disc with a granular centre, at sub-pixel position."""
    r = platelet.radius_px
    reach = r + 3
    top = math.floor(platelet.centre_yx[0] - reach)
    left = math.floor(platelet.centre_yx[1] - reach)
    side = math.ceil(2 * reach) + 2
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    dist = np.hypot(yy - (platelet.centre_yx[0] - top), xx - (platelet.centre_yx[1] - left))
    alpha = np.clip(r + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    centre = np.clip(0.65 * r + 0.5 - dist, 0.0, 1.0)
    grain = rng.uniform(0.5, 1.5, alpha.shape).astype(np.float32)
    density = (alpha * (0.35 + 0.65 * centre * grain)).astype(np.float32)
    return PlateletPatch((top, left), alpha, density)
