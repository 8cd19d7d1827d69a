"""A cell's gallery picture: its modalities side by side, as an 8-bit PNG.

Made where the crops are made (the segment worker), so the central process never holds crops for
pictures; the report and the review page show these bytes as they are stored.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from leukoscope.errors import StorageError
from leukoscope.imaging import to_unit_float
from leukoscope.pipeline import wire
from leukoscope.types import CellCrop, CellKey

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_THUMBNAIL_BYTES = 65_536  # larger pictures are left out (the gallery shows none for the cell)


def png_thumbnail(image: np.ndarray) -> bytes:
    """PNG bytes of an image (H x W or H x W x C, uint8 or uint16): the one PNG encoder of the
    gallery and review pictures; StorageError if it cannot be encoded."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise StorageError(f"cannot encode a {image.shape} {image.dtype} thumbnail as PNG")
    return bytes(data.tobytes())


def thumbnail(crops: np.ndarray) -> bytes:
    """The modalities of one cell side by side, as an 8-bit PNG (b"" if it cannot be encoded)."""
    tiles = [to_unit_float(c) for c in crops]
    strip = np.concatenate([t if t.ndim == 2 else t.mean(axis=-1) for t in tiles], axis=1)
    image = (np.clip(strip, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    try:
        png = png_thumbnail(image)
    except StorageError:
        return b""
    return png if len(png) <= MAX_THUMBNAIL_BYTES else b""


def thumbnails_of(batch: wire.CellBatch, cells: Iterable[CellCrop]) -> dict[CellKey, bytes]:
    """The pictures the segment worker sent with `cells` of its batch, by cell key (cells without
    one, or with bytes that are not a PNG, are left out: the gallery shows none for them)."""
    if len(batch.thumbnails) != len(batch.cells):
        return {}
    sent = {c.key: png for c, png in zip(batch.cells, batch.thumbnails, strict=True)}
    return {c.key: png for c in cells if (png := sent.get(c.key, b"")).startswith(PNG_SIGNATURE)}
