"""Optics: point-spread blur, the known misregistration shift, and vignetting."""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
from scipy import fft

from leukoscope.types import MODALITIES, Modality


def blur_shift_kernel(
    shape: tuple[int, int], sigma: float, shift_yx: tuple[float, float]
) -> np.ndarray:
    """The Fourier-domain factor (half spectrum, complex64) of `blur_shift_periodic`: it depends on
    the shape, blur and shift only, so images of one modality can share it."""
    height, width = shape
    fy = fft.fftfreq(height).astype(np.float32)[:, None]
    fx = fft.rfftfreq(width).astype(np.float32)[None, :]
    gain = np.exp(-2.0 * (math.pi * sigma) ** 2 * (fy * fy + fx * fx))
    phase = np.exp(-2j * math.pi * (fy * shift_yx[0] + fx * shift_yx[1]))
    return np.asarray((gain * phase).astype(np.complex64))


def apply_periodic_kernel(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A periodic image filtered by a `blur_shift_kernel` of its shape (float32)."""
    spectrum = fft.rfft2(image, workers=2) * kernel
    result = fft.irfft2(spectrum, s=image.shape, workers=2)
    return np.asarray(result.astype(np.float32, copy=False))


def blur_shift_periodic(
    image: np.ndarray, sigma: float, shift_yx: tuple[float, float]
) -> np.ndarray:
    """Gaussian blur and sub-pixel shift of a periodic image, exactly, in the Fourier domain."""
    return apply_periodic_kernel(image, blur_shift_kernel(image.shape, sigma, shift_yx))


def translate(image: np.ndarray, shift_yx: tuple[float, float], border: int) -> np.ndarray:
    """Move image content by `shift_yx` px (bilinear), same shape and dtype; `border` a cv2 mode."""
    matrix = np.array([[1.0, 0.0, shift_yx[1]], [0.0, 1.0, shift_yx[0]]], dtype=np.float32)
    size = (image.shape[1], image.shape[0])
    return np.asarray(
        cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=border)
    )


def blur_shift_patch(patch: np.ndarray, sigma: float, frac_yx: tuple[float, float]) -> np.ndarray:
    """Blur a small patch (zero outside) and move it by a sub-pixel offset (|frac| < 1)."""
    out = np.asarray(cv2.GaussianBlur(patch, (0, 0), sigma)) if sigma > 0.05 else patch
    if frac_yx[0] or frac_yx[1]:
        out = translate(out, frac_yx, cv2.BORDER_CONSTANT)
    return out


def split_offset(offset: tuple[float, float]) -> tuple[tuple[int, int], tuple[float, float]]:
    """An offset as its whole-pixel part and its fractional remainder in [0, 1)."""
    whole = (math.floor(offset[0]), math.floor(offset[1]))
    return whole, (offset[0] - whole[0], offset[1] - whole[1])


@lru_cache(maxsize=8)
def _vignette_maps(shape: tuple[int, int], strength: float) -> tuple[np.ndarray, ...]:
    height, width = shape
    yy = (np.arange(height, dtype=np.float32) - (height - 1) / 2.0) / (height / 2.0)
    xx = (np.arange(width, dtype=np.float32) - (width - 1) / 2.0) / (width / 2.0)
    maps = []
    for i, _ in enumerate(MODALITIES):
        # each light source is centred slightly differently on the field
        cy, cx = 0.06 * math.sin(1.7 * i), 0.06 * math.cos(2.3 * i)
        r2 = ((yy - cy)[:, None] ** 2 + (xx - cx)[None, :] ** 2) / 2.0
        vmap = (1.0 - strength * r2).astype(np.float32)
        vmap.setflags(write=False)
        maps.append(vmap)
    return tuple(maps)


def vignette(shape: tuple[int, int], strength: float, modality: Modality) -> np.ndarray:
    """Relative illumination of `modality` over a frame of `shape` (1 at centre, 1-strength at corners)."""
    return _vignette_maps(shape, strength)[MODALITIES.index(modality)]
