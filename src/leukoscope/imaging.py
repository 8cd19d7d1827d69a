"""Small image utilities shared by the simulator, segmentation and the classifier's data loader.

One crop function for everything: the training set and the live pipeline cut cells the same way, so the
model sees at run time what it saw in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from leukoscope.limits import DEFAULT_CROP_UM


def crop_side_px(pixel_size_um: float, crop_um: float = DEFAULT_CROP_UM) -> int:
    """Side in pixels of a crop of `crop_um` micrometres (rounded to an even number)."""
    side = int(round(crop_um / pixel_size_um))
    return max(2, side + (side % 2))


def crop_centered(image: np.ndarray, centre_yx: tuple[float, float], side_px: int) -> np.ndarray:
    """A `side_px` square of `image` centred on `centre_yx`; reflects the image past its border."""
    height, width = image.shape[:2]
    top = int(round(centre_yx[0])) - side_px // 2
    left = int(round(centre_yx[1])) - side_px // 2
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side_px, height), min(left + side_px, width)
    patch = image[y0:y1, x0:x1]
    pads = (y0 - top, top + side_px - y1, x0 - left, left + side_px - x1)
    if any(pads):
        patch = cv2.copyMakeBorder(np.ascontiguousarray(patch), *pads, cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(patch)


def resize_square(image: np.ndarray, out_px: int) -> np.ndarray:
    """Resize a square image to `out_px` (area averaging when shrinking, bilinear when growing)."""
    if image.shape[0] == out_px and image.shape[1] == out_px:
        return image
    shrinking = image.shape[0] > out_px
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (out_px, out_px), interpolation=interpolation)


def crop_cell(
    frames: Sequence[np.ndarray], centre_yx: tuple[float, float], side_px: int, out_px: int
) -> np.ndarray:
    """The same square cut from every frame, resized to `out_px`: shape (frames, out, out[, C])."""
    return np.stack([resize_square(crop_centered(f, centre_yx, side_px), out_px) for f in frames])


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Scale an integer image to float32 in [0, 1] by its dtype's range (floats pass through)."""
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float32) / float(np.iinfo(image.dtype).max)
    return image.astype(np.float32, copy=False)
