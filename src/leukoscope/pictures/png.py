"""PNG bytes: the one encoder of the gallery, review and report pictures."""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.errors import StorageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an image (H x W or H x W x C, uint8 or uint16); StorageError if it cannot
    be encoded."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise StorageError(f"cannot encode a {image.shape} {image.dtype} image as PNG")
    return bytes(data.tobytes())
