"""Fields with a noisy half, as a camera fault, a smear edge or a bubble gives them: a saved
acquisition with one such field, and the noise itself (bright 1 um specks on a flat background)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from leukoscope.acquisition_files import storage
from leukoscope.types import FrameSet, Modality


def noisy(
    frame: np.ndarray, rows: int, share: float = 0.05, block: int = 4, seed: int = 0
) -> np.ndarray:
    """`frame` with its first `rows` rows replaced by noise: squares of `block` pixels (1 um at
    0.25 um/px), a `share` of them as bright as the frame's brightest, the rest at its median.
    A 2048 x 1024 half of this holds about 4,000 candidate regions, a 512 x 256 one about 260."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    squares = rng.random((-(-rows // block), -(-frame.shape[1] // block))) < share
    coarse = np.where(squares, float(frame.max()), float(np.median(frame)))
    out[:rows] = np.kron(coarse, np.ones((block, block)))[:rows, : frame.shape[1]]
    return out


def with_noise(frameset: FrameSet, rows: int | None = None, share: float = 0.05) -> FrameSet:
    """`frameset` with the top half (or `rows` rows) of its fluorescence frame noise."""
    index = frameset.modalities.index(Modality.FLUORESCENCE)
    frames = list(frameset.frames)
    fluorescence = frames[index]
    rows = rows or fluorescence.shape[0] // 2
    frames[index] = noisy(fluorescence, rows, share, seed=frameset.fov)
    return dataclasses.replace(frameset, frames=tuple(frames))


def make_noise_field(folder: Path, fov: int) -> FrameSet:
    """Rewrite field `fov` of a saved (simulated) acquisition with its top half noise."""
    frameset = with_noise(storage.read_field(folder, fov))
    storage.write_field(folder, frameset, simulated=True)
    return frameset
