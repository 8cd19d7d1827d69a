"""A cell's stored thumbnail: its modalities side by side as one 8-bit PNG, and back into tiles.

Made where the crops are made (the segment worker), so the central process never holds crops for
pictures; the report and the review page show these bytes as they are stored, or split them.
"""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.errors import StorageError
from leukoscope.imaging import to_unit_float
from leukoscope.pictures.png import encode_png
from leukoscope.types import Modality

MAX_THUMBNAIL_BYTES = 65_536  # larger pictures are left out (the gallery shows none for the cell)


def thumbnail(crops: np.ndarray) -> bytes:
    """The modalities of one cell side by side, as an 8-bit PNG (b"" if it cannot be encoded)."""
    tiles = [to_unit_float(c) for c in crops]
    strip = np.concatenate([t if t.ndim == 2 else t.mean(axis=-1) for t in tiles], axis=1)
    image = (np.clip(strip, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    try:
        png = encode_png(image)
    except StorageError:
        return b""
    return png if len(png) <= MAX_THUMBNAIL_BYTES else b""


def split_tiles(png: bytes, modalities: tuple[Modality, ...]) -> dict[Modality, np.ndarray]:
    """The stored thumbnail's tiles (one square per modality, left to right), as float32."""
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim < 2:
        raise StorageError("cell thumbnail is not a readable PNG")
    if image.ndim == 3:
        image = image.mean(axis=-1)
    side = image.shape[0]
    if side == 0 or image.shape[1] != side * len(modalities):
        raise StorageError(
            f"cell thumbnail of {image.shape[1]}x{side} px does not hold {len(modalities)} tiles"
        )
    tiles = image.astype(np.float32)
    return {m: tiles[:, i * side : (i + 1) * side] for i, m in enumerate(modalities)}
