"""Smudge (basket) cells: white cells ruptured while the film was spread (a hard case).

What is left is the bare nuclear chromatin, smeared into a faint, diffuse, streaky patch 10-20 um
across, with no cytoplasm and no cell outline (Bain, Blood Cells (5th ed.), ch. 3: smear or basket
cells, a few per cent of the white cells of a normal film, many more in chronic lymphocytic
leukaemia). Drawn as four to eight elongated Gaussian strands roughly along the spreading direction,
with a lacy chromatin texture; its DNA still takes the nuclear stain, so it fluoresces, at a fraction
of an intact nucleus (peak `strength` 0.15-0.4) and is faint in bright field (the nucleus' absorbance
at that fraction: purple, most in green).

Rate: Poisson with mean `SampleParams.smudge_fraction` x white cells per field (default 0.02). From
their own random streams (12: where and what, 13: texture), so the rest of the field is unchanged;
they never overlap a white cell or each other. Listed in the ground truth as not white cells, never
counted.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from leukoscope.instrument.simulator.debris import OverlayPatch, patch_grid
from leukoscope.instrument.simulator.placement import Disc, clear_of
from leukoscope.instrument.simulator.truth import Smudge
from leukoscope.types import Modality

SMUDGE_ABSORBANCE: dict[Modality, float] = {
    Modality.COLOR1: 0.15,
    Modality.COLOR2: 0.62,
    Modality.COLOR3: 0.38,
    Modality.FLUORESCENCE: 0.0,
}
"""Per light, absorbance at density 1: the nucleus' (contrast.py, as calibrated against the BCCD smears), since
it is the same chromatin; spread thin (density 0.15-0.4), it is a faint purple smear."""


def draw_smudge(
    rng: np.random.Generator,
    frame: tuple[int, int],
    mean_count: float,
    px_per_um: float,
    avoid: list[Disc],
) -> tuple[Smudge, ...]:
    """Poisson(`mean_count`) smudge cells, clear of white cells (`avoid`: y, x, extent) and each
    other by 1 um; one that finds no room in 60 tries is dropped."""
    count = int(rng.poisson(mean_count))
    kept: list[Smudge] = []
    taken = list(avoid)
    gap = px_per_um
    for _ in range(count):
        radius = 0.5 * float(rng.uniform(10.0, 20.0)) * px_per_um
        strength = float(rng.uniform(0.15, 0.4))
        smear = float(rng.uniform(0, math.pi))
        streaks = []
        for _ in range(int(rng.integers(4, 9))):
            along = radius * float(rng.uniform(0.35, 0.6))
            across = radius * float(rng.uniform(0.1, 0.22))
            reach = max(radius - along, 0.0) * 0.8 + 0.2 * radius
            dist, angle = reach * math.sqrt(float(rng.uniform())), float(rng.uniform(0, math.tau))
            tilt = smear + float(rng.normal(0.0, 0.35))
            streaks.append((dist * math.sin(angle), dist * math.cos(angle), along, across, tilt))
        ys = rng.uniform(0, frame[0], 60)
        xs = rng.uniform(0, frame[1], 60)
        for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
            if clear_of(y, x, radius, taken, gap):
                taken.append((y, x, radius))
                kept.append(Smudge(len(kept), (y, x), radius, strength, tuple(streaks)))
                break
    return tuple(kept)


def rasterise_smudge(smudge: Smudge, rng: np.random.Generator, px_per_um: float) -> OverlayPatch:
    """The strands, under a lacy chromatin texture, scaled to peak `strength`."""
    origin, dy, dx = patch_grid(smudge.centre_yx, smudge.radius_px + 3)
    density = np.zeros(dy.shape, np.float32)
    for sy, sx, along, across, tilt in smudge.streaks:
        c, s = math.cos(tilt), math.sin(tilt)
        u = (dy - sy) * s + (dx - sx) * c  # along the strand
        v = (dy - sy) * c - (dx - sx) * s
        density += np.exp(-0.5 * ((u / along) ** 2 + (v / across) ** 2)).astype(np.float32)
    density = 1.0 - np.exp(-1.5 * density)  # strands that cross do not pile up into a nucleus
    noise = rng.uniform(0.0, 1.0, density.shape).astype(np.float32)
    lace = np.asarray(cv2.GaussianBlur(noise, (0, 0), 0.6 * px_per_um))
    lace = (lace - lace.mean()) / max(float(lace.std()), 1e-6)
    density *= np.clip(1.0 + 0.35 * lace, 0.2, None)
    taper = np.clip(smudge.radius_px + 1.0 - np.hypot(dy, dx), 0.0, 1.0)
    density *= taper.astype(np.float32)
    density *= np.float32(smudge.strength / max(float(density.max()), 1e-6))
    return OverlayPatch(origin, density.astype(np.float32), SMUDGE_ABSORBANCE, 1.0)
