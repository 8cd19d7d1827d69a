"""Steps 1-2 of the segmentation (segmentation.py): the working image, its background removed, and
the mask of the nuclei, thresholded above the noise; with the image helpers they use."""

from __future__ import annotations

import math

import cv2
import numpy as np

from leukoscope.config import SegmentationConfig
from leukoscope.errors import ParameterError


def odd_size(n: float) -> int:
    """The odd kernel side nearest `n` (at least 1)."""
    k = max(1, int(round(n)))
    return k + 1 - k % 2


def disc(radius_px: float) -> np.ndarray:
    """An elliptical structuring element of about `radius_px`."""
    size = odd_size(2 * radius_px + 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Area-average `image` (H x W or H x W x C) by `factor`, as one float32 channel."""
    if image.ndim not in (2, 3) or image.size == 0:
        raise ParameterError(f"fluorescence frame must be H x W or H x W x C, got {image.shape}")
    height, width = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        image = image.astype(np.float32)
    image = image[:height, :width]
    if factor > 1:
        image = cv2.resize(
            np.ascontiguousarray(image),
            (width // factor, height // factor),
            interpolation=cv2.INTER_AREA,
        )
    if image.ndim == 3:
        return np.asarray(image.mean(axis=2, dtype=np.float32))
    return image.astype(np.float32)


def background_of(image: np.ndarray, window_px: float) -> np.ndarray:
    """Grey opening then box blur over `window_px`, on a 4x coarser copy (the background is smooth)."""
    coarse = 4 if min(image.shape) >= 64 and window_px >= 12 else 1
    small = image
    if coarse > 1:
        height, width = image.shape
        small = cv2.resize(image, (width // coarse, height // coarse), interpolation=cv2.INTER_AREA)
    window = odd_size(window_px / coarse)
    flat = np.ones((window, window), np.uint8)
    background = cv2.blur(cv2.morphologyEx(small, cv2.MORPH_OPEN, flat), (window, window))
    if coarse > 1:
        background = cv2.resize(background, image.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return background


def otsu_threshold(smooth: np.ndarray, floor: float) -> float | None:
    """Otsu's threshold on the log intensity of the pixels above the noise `floor`.

    Above the noise there are two populations: the faint glow of plasma and cytoplasm, and nuclei
    tens of times brighter; on a log scale Otsu splits them cleanly. None when nothing is above the
    noise floor.
    """
    above = smooth[smooth > floor]
    if above.size == 0:
        return None
    if above.size < 16:
        return floor
    logs = np.log(above - floor + 1.0)
    top = float(logs.max())
    if top <= 0:
        return floor
    scaled = np.round(logs * (255.0 / top)).astype(np.uint8).reshape(1, -1)
    level, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return floor + math.exp(level * top / 255.0) - 1.0


def working_image(
    fluorescence: np.ndarray, pixel_size_um: float, params: SegmentationConfig
) -> tuple[np.ndarray, int, float]:
    """The fluorescence area-averaged to about `working_px_um`: (image, factor, its pixel size)."""
    if not pixel_size_um > 0:
        raise ParameterError(f"pixel_size_um must be > 0, got {pixel_size_um}")
    factor = max(1, min(8, int(round(params.working_px_um / pixel_size_um))))
    return downsample(fluorescence, factor), factor, pixel_size_um * factor


def remove_background(small: np.ndarray, params: SegmentationConfig, px_um: float) -> np.ndarray:
    """Step 1: the working image less its background (opening + blur over `background_um`)."""
    corrected: np.ndarray = small - background_of(small, params.background_um / px_um)
    return corrected


def nucleus_mask(
    corrected: np.ndarray, params: SegmentationConfig, px_um: float
) -> np.ndarray | None:
    """Step 2: smoothed, thresholded (noise floor, then Otsu on the log intensity) and closed;
    None when nothing stands above the noise."""
    smooth = cv2.GaussianBlur(corrected, (0, 0), params.smooth_um / px_um)
    sample = smooth[::3, ::3]  # the noise statistics need no more pixels than this
    median = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - median)))
    span = float(smooth.max()) - median
    noise = max(noise, 1e-3 * span, 1e-12)
    threshold = otsu_threshold(smooth, median + params.threshold_sigmas * noise)
    if threshold is None:
        return None
    # clean backgrounds (no red cells): the noise floor collapses and faint rims would pass Otsu
    threshold = max(threshold, median + params.min_contrast * span)
    mask = (smooth > threshold).astype(np.uint8)
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, disc(params.close_um / px_um))
