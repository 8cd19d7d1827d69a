"""Cells at native resolution for review and the report: re-cut from the saved acquisition the
sample was analysed from (`samples.source`), a `crop_um` square around the cell's stored nucleus
box, at the camera's pixel size (96 px for 24 um at 0.25 um/px) instead of the classifier's
downsized crop."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from leukoscope.acquisition_files.storage import read_field
from leukoscope.errors import StorageError
from leukoscope.imaging import crop_centered, crop_side_px
from leukoscope.pictures.thumbnail import split_tiles
from leukoscope.types import FrameSet, Modality

FIELDS_CACHED = 4
"""Fields kept in memory (a 2048 x 2048 x 4 uint16 field is 32 MiB)."""


class NativeCrops:
    """Native crops of stored cells, the last few fields read kept in memory; thread-safe."""

    def __init__(self, crop_um: float, fields_cached: int = FIELDS_CACHED) -> None:
        self.crop_um = crop_um
        self._fields: OrderedDict[tuple[str, int], FrameSet] = OrderedDict()
        self._limit = fields_cached
        self._lock = threading.Lock()

    def _field(self, source: str, fov: int) -> FrameSet:
        key = (source, fov)
        if key in self._fields:
            self._fields.move_to_end(key)
            return self._fields[key]
        frameset = read_field(Path(source), fov)
        self._fields[key] = frameset
        while len(self._fields) > self._limit:
            self._fields.popitem(last=False)
        return frameset

    def tiles(
        self, source: str, fov: int, bbox: tuple[int, int, int, int]
    ) -> dict[Modality, np.ndarray] | None:
        """Every modality's native crop around the box (x, y, w, h); None when the acquisition
        is not there (moved, deleted, never saved) or unreadable: callers fall back to the
        stored crop."""
        if not source or not (Path(source) / "acquisition.json").is_file():
            return None
        with self._lock:
            try:
                frameset = self._field(source, fov)
            except (StorageError, OSError):
                return None
        side = crop_side_px(frameset.pixel_size_um, self.crop_um)
        x, y, width, height = bbox
        centre = (y + (height - 1) / 2.0, x + (width - 1) / 2.0)
        tiles = {}
        for modality in frameset.modalities:
            frame = frameset.frame(modality)
            crop = crop_centered(frame, centre, side).astype(np.float32)
            tiles[modality] = crop.mean(axis=-1) if crop.ndim == 3 else crop
        return tiles


def cell_tiles(
    native: NativeCrops,
    source: str,
    fov: int,
    bbox: tuple[int, int, int, int],
    thumbnail: bytes | None,
    modalities: tuple[Modality, ...],
) -> tuple[dict[Modality, np.ndarray], str] | None:
    """A cell's modalities, what the review page and the report gallery draw: the native crop
    when its saved acquisition is there ("native"), else the stored thumbnail's tiles ("stored");
    None when there is neither."""
    tiles = native.tiles(source, fov, bbox)
    if tiles is not None:
        return tiles, "native"
    if thumbnail is None:
        return None
    return split_tiles(thumbnail, modalities), "stored"
