"""The camera sensor: photo-electrons -> shot and read noise -> gain -> 8..16-bit digital numbers.

Shot noise is drawn as Gaussian with the Poisson variance (exact enough above a few electrons). To be
fast, the unit normals come from fixed pools, one per light source, from which every frame takes a
contiguous window at a random offset: a frame's noise is still independent pixel to pixel, and two
modalities never share a pattern (which would fool registration).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from leukoscope.errors import CameraError
from leukoscope.instrument.simulator.params import SensorParams
from leukoscope.types import MODALITIES, Modality, is_fluorescence

PIXEL_FORMATS: dict[str, int] = {"Mono8": 8, "Mono10": 10, "Mono12": 12, "Mono16": 16}
"""Supported GenICam pixel formats and their bit depth (8 -> uint8, more -> uint16)."""


def bit_depth_of(pixel_format: str) -> int:
    """Bit depth of a supported pixel format; CameraError for any other."""
    try:
        return PIXEL_FORMATS[pixel_format]
    except KeyError:
        allowed = ", ".join(PIXEL_FORMATS)
        raise CameraError(
            f"pixel format {pixel_format!r} not supported by the simulated camera; use {allowed}"
        ) from None


def dtype_of(bit_depth: int) -> type[np.unsignedinteger]:
    """Storage type of a bit depth: uint8 up to 8 bits, uint16 above."""
    return np.uint8 if bit_depth <= 8 else np.uint16


@lru_cache(maxsize=16)
def _pool(pixels: int, index: int) -> np.ndarray:
    rng = np.random.default_rng([0x5EED, pixels, index])
    pool = rng.standard_normal(pixels + _slack(pixels), dtype=np.float32)
    pool.setflags(write=False)
    return pool


def _slack(pixels: int) -> int:
    return pixels // 8 + 1024


def unit_noise(shape: tuple[int, int], pool_index: int, rng: np.random.Generator) -> np.ndarray:
    """A read-only (H, W) window of unit normal noise from pool `pool_index`."""
    pixels = shape[0] * shape[1]
    start = int(rng.integers(0, _slack(pixels)))
    return _pool(pixels, pool_index)[start : start + pixels].reshape(shape)


def bleach_factor(dose: float, prior_dose: float, bleach_dose: float) -> float:
    """Mean emission during an exposure of `dose` (percent x us) after `prior_dose`, relative to none."""
    remaining = math.exp(-prior_dose / bleach_dose)
    if dose <= 0:
        return remaining
    return remaining * bleach_dose * (1.0 - math.exp(-dose / bleach_dose)) / dose


Source = tuple[np.ndarray, float]
"""A radiance map and its electrons per unit radiance during this exposure."""

_BLOCK_ROWS = 128  # rows processed at once: every pass stays in cache
_THREADED_PIXELS = 1 << 20  # frames this large are read out on two threads


class Sensor:
    """Turns expected radiance into a noisy, quantised frame."""

    def __init__(self, params: SensorParams | None = None) -> None:
        self.params = params or SensorParams()

    def source(
        self,
        radiance: np.ndarray,
        modality: Modality,
        exposure_us: float,
        intensity_percent: float,
        scale: float = 1.0,
    ) -> Source:
        """`radiance` lit by `modality` at `intensity_percent` for `exposure_us`, scaled."""
        gain = self.params.photon_rate[modality] * exposure_us * intensity_percent / 100.0 * scale
        return (radiance, gain)

    def lit_sources(
        self,
        radiance: Mapping[Modality, np.ndarray],
        lit: Mapping[Modality, float],
        exposure_us: float,
        prior_dose: float = 0.0,
    ) -> list[Source]:
        """What reaches the sensor with the `lit` lights on (drive in percent) together.

        Fluorescence is dimmed by bleaching: the dose of this exposure plus `prior_dose` (percent x us)
        the field already received.
        """
        sources = []
        for modality in MODALITIES:
            drive = lit.get(modality, 0.0)
            if drive <= 0:
                continue
            scale = 1.0
            if is_fluorescence(modality):
                scale = bleach_factor(drive * exposure_us, prior_dose, self.params.bleach_dose)
            sources.append(self.source(radiance[modality], modality, exposure_us, drive, scale))
        return sources

    def read_out(
        self,
        sources: Sequence[Source],
        shape: tuple[int, int],
        bit_depth: int,
        gain_db: float,
        rng: np.random.Generator,
        pool_index: int = 0,
    ) -> np.ndarray:
        """Expose `sources` (none = dark frame): shot and read noise, gain, digitise to `bit_depth`."""
        out = np.empty(shape, dtype_of(bit_depth))
        noise = unit_noise(shape, pool_index % len(MODALITIES), rng)
        top = float(2**bit_depth - 1)
        scale = top / self.params.full_well_e * 10.0 ** (gain_db / 20.0)
        rows = [(r, min(r + _BLOCK_ROWS, shape[0])) for r in range(0, shape[0], _BLOCK_ROWS)]

        def block(span: tuple[int, int]) -> None:
            self._block(sources, noise, out, span, scale, top)

        if shape[0] * shape[1] >= _THREADED_PIXELS:
            with ThreadPoolExecutor(2) as workers:  # numpy releases the GIL on these passes
                list(workers.map(block, rows))
        else:
            for span in rows:
                block(span)
        return out

    def _block(
        self,
        sources: Sequence[Source],
        noise: np.ndarray,
        out: np.ndarray,
        span: tuple[int, int],
        scale: float,
        top: float,
    ) -> None:
        y0, y1 = span
        e = np.empty((y1 - y0, out.shape[1]), np.float32)
        if not sources:
            e.fill(0.0)
        for index, (radiance, gain) in enumerate(sources):
            if index == 0:  # the first source written straight in: 0 + x is x
                np.multiply(radiance[y0:y1], np.float32(gain), out=e)
            else:
                e += radiance[y0:y1] * np.float32(gain)
        np.maximum(e, 0.0, out=e)
        sigma = e + np.float32(self.params.read_noise_e**2)
        np.sqrt(sigma, out=sigma)
        sigma *= noise[y0:y1]
        e += sigma
        e += np.float32(self.params.black_level_e)
        e *= np.float32(scale)
        np.clip(e, 0.0, top, out=e)
        e += np.float32(0.5)
        out[y0:y1] = e
