"""The red-cell monolayer: a periodic (wrap-around) layer of haemoglobin thickness.

Red cells sit on a jittered hexagonal lattice whose spacing is a little under one diameter, so
neighbours touch and overlap slightly (overlaps add up and look darker, as on a slide); a fraction of
sites stays empty. Each cell is a biconcave disc: thicker rim, thin centre (the central pallor). The
layer wraps around at its edges, so any wrap-around offset of it is a seamless field background.
"""

from __future__ import annotations

import math

import numpy as np

_RADIUS_BINS = 12


def _disc_sprite(radius: float) -> np.ndarray:
    """Thickness profile of one red cell (biconcave: rim ~1, centre ~0.55), soft edge."""
    half = math.ceil(radius) + 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    r = np.hypot(yy, xx) / np.float32(radius)
    body = 0.55 + 0.45 * np.clip(r, 0.0, 1.0) ** 2
    edge = np.clip((1.0 - r) * radius / 1.2 + 0.5, 0.0, 1.0)
    return np.asarray((body * edge).astype(np.float32))


def rbc_layer(
    side: int, diameter_px: float, coverage: float, rng: np.random.Generator
) -> np.ndarray:
    """A `side` x `side` periodic haemoglobin-thickness map (float32, ~0 plasma, ~1 red-cell rim)."""
    spacing = 0.95 * diameter_px
    cols = max(1, round(side / spacing))
    rows = max(2, 2 * round(side / (spacing * math.sqrt(3.0))))
    dy, dx = side / rows, side / cols
    gy, gx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    ys = gy * dy
    xs = gx * dx + (gy % 2) * dx / 2.0
    ys = ys + rng.normal(0.0, 0.12 * diameter_px, ys.shape)
    xs = xs + rng.normal(0.0, 0.12 * diameter_px, xs.shape)
    keep = rng.uniform(size=ys.shape) < coverage
    radii = np.clip(rng.normal(diameter_px / 2.0, 0.05 * diameter_px, ys.shape), 2.0, None)
    ys, xs, radii = ys[keep] % side, xs[keep] % side, radii[keep]

    lo, hi = float(radii.min(initial=diameter_px / 2)), float(radii.max(initial=diameter_px / 2))
    bins = np.linspace(lo, hi + 1e-6, _RADIUS_BINS + 1)
    sprites = [_disc_sprite(0.5 * (bins[i] + bins[i + 1])) for i in range(_RADIUS_BINS)]
    pad = max(s.shape[0] for s in sprites)
    canvas = np.zeros((side + 2 * pad, side + 2 * pad), np.float32)
    which = np.clip(np.digitize(radii, bins) - 1, 0, _RADIUS_BINS - 1)
    for y, x, k in zip(np.rint(ys).astype(int), np.rint(xs).astype(int), which, strict=True):
        sprite = sprites[k]
        half = sprite.shape[0] // 2
        top, left = y + pad - half, x + pad - half
        canvas[top : top + sprite.shape[0], left : left + sprite.shape[1]] += sprite
    # fold the margins back: the layer is periodic
    out = canvas[pad : pad + side, pad : pad + side].copy()
    out[:pad, :] += canvas[pad + side :, pad : pad + side]
    out[-pad:, :] += canvas[:pad, pad : pad + side]
    out[:, :pad] += canvas[pad : pad + side, pad + side :]
    out[:, -pad:] += canvas[pad : pad + side, :pad]
    out[:pad, :pad] += canvas[pad + side :, pad + side :]
    out[:pad, -pad:] += canvas[pad + side :, :pad]
    out[-pad:, :pad] += canvas[:pad, pad + side :]
    out[-pad:, -pad:] += canvas[:pad, :pad]
    return np.asarray(out)
