"""What the review page and the report draw of a cell's modalities (native crops, or the stored
thumbnail split into its tiles): each auto-contrasted, the bright-field lights combined in their
display colours, each light alone in its own; PNG bytes at the crop's resolution."""

from __future__ import annotations

import numpy as np

from leukoscope.config import Settings
from leukoscope.errors import StorageError
from leukoscope.pictures.png import encode_png
from leukoscope.types import MODALITIES, Modality, bright_field_modalities

VIEWS = ("composite", *(m.value for m in MODALITIES))
"""What `cell_view` draws: the bright-field composite, or one modality in its display colour."""
LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.5


def hex_rgb(colour: str) -> np.ndarray:
    """'#rrggbb' as floats in [0, 1] (R, G, B)."""
    return np.array([int(colour[i : i + 2], 16) / 255.0 for i in (1, 3, 5)], dtype=np.float32)


def display_colours(settings: Settings) -> dict[Modality, np.ndarray]:
    """Each light's display colour from the configuration ([rig.lights.channels.*])."""
    return {m: hex_rgb(c.display_color) for m, c in settings.rig.lights.channels.items()}


def auto_contrast(tile: np.ndarray) -> np.ndarray:
    """Stretch a tile so its 1st..99.5th percentiles span [0, 1]."""
    low, high = np.percentile(tile, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if high - low < 1e-6:
        return np.zeros_like(tile)
    return np.asarray(np.clip((tile - low) / (high - low), 0.0, 1.0))


def _rgb_png(rgb: np.ndarray) -> bytes:
    """float RGB in [0, 1] -> PNG bytes (OpenCV writes BGR)."""
    bgr = (np.clip(rgb[..., ::-1], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return encode_png(bgr)


def cell_view(
    tiles: dict[Modality, np.ndarray], colours: dict[Modality, np.ndarray], view: str
) -> bytes:
    """One picture of a cell: `composite` (the bright-field lights, each auto-contrasted, in
    their display colours, added) or one modality, auto-contrasted, in its display colour."""
    if view not in VIEWS:
        raise StorageError(f"unknown view {view!r}")
    if view == "composite":
        present = [m for m in bright_field_modalities() if m in tiles]
        if not present:
            raise StorageError("the model saw no bright-field light: no composite to draw")
        total = sum(colours[m] for m in present)
        scale = np.where(total > 0, 1.0 / np.maximum(total, 1e-6), 0.0)
        rgb = sum(auto_contrast(tiles[m])[..., None] * colours[m] for m in present)
        return _rgb_png(np.asarray(rgb) * scale)
    modality = Modality(view)
    if modality not in tiles:
        raise StorageError(f"the stored crop holds no {view} image")
    return _rgb_png(auto_contrast(tiles[modality])[..., None] * colours[modality])
