"""Generate a synthetic training set: four-modality cell crops in the layout of DESIGN.md.

`root/<modality>/<CLASS>/<cell_id>.png`, the same relative paths in every modality folder, plus
`root/dataset.json` (provenance and per-cell ground truth). Each cell is rendered on a small tile of a
field (own red-cell background, a random place in the field for vignetting, full optics and noise),
registered with the known offsets and cut with `imaging.crop_cell`, exactly as the pipeline cuts cells.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from leukoscope.errors import ParameterError
from leukoscope.imaging import DEFAULT_CROP_UM, crop_cell, crop_side_px
from leukoscope.instrument.simulator.composition import DEFAULT_COMPOSITION, PAPER_TOTAL, apportion
from leukoscope.instrument.simulator.frames import (
    CaptureSettings,
    expose,
    registration_shift,
    shift_image,
)
from leukoscope.instrument.simulator.morphology import sample_shape
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.types import CELL_CLASSES, MODALITIES, CellClass, Modality

DATASET_FILE = "dataset.json"
_CELL_STREAM = 21
_ORDER_STREAM = 22


class CellTileRenderer:
    """Renders single white cells on small tiles and cuts them like the pipeline does."""

    def __init__(
        self,
        seed: int = 0,
        pixel_size_um: float = 0.25,
        crop_um: float = DEFAULT_CROP_UM,
        bit_depth: int = 8,
        out_px: int | None = None,
    ) -> None:
        if crop_um <= 0:
            raise ParameterError(f"crop size must be > 0 um, got {crop_um}")
        self.seed = seed
        params = SampleParams(pixel_size_um=pixel_size_um, canvas_side=512, background_canvases=4)
        self.sample = SimulatedSample(seed, params)
        self.renderer = FieldRenderer(self.sample)
        self.sensor = Sensor()
        self.settings = CaptureSettings(bit_depth=bit_depth)
        self.side = crop_side_px(pixel_size_um, crop_um)
        self.out_px = out_px or self.side
        pad = max(abs(v) for off in self.renderer.offsets_px.values() for v in off)
        self.tile = self.side + 2 * (int(pad) + 4)

    def render(
        self, index: int, cell_class: CellClass
    ) -> tuple[dict[Modality, np.ndarray], dict[str, Any]]:
        """Crops (one per modality) of cell number `index` of `cell_class`, and its ground truth."""
        rng = np.random.default_rng([self.seed, _CELL_STREAM, index])
        shape = sample_shape(cell_class, rng, self.sample.params.pixel_size_um)
        jitter = rng.uniform(-0.06, 0.06, 2) * self.side
        centre = (self.tile / 2 + float(jitter[0]), self.tile / 2 + float(jitter[1]))
        frame_h, frame_w = self.sample.frame_shape
        origin = (
            int(rng.integers(0, frame_h - self.tile)),
            int(rng.integers(0, frame_w - self.tile)),
        )
        canvas = int(rng.integers(0, self.sample.params.background_canvases))
        roll = (int(rng.integers(0, 1 << 20)), int(rng.integers(0, 1 << 20)))
        radiance = self.renderer.compose(
            (self.tile, self.tile), origin, canvas, roll, [(shape, centre)], rng
        )
        frames = expose(self.sensor, radiance, self.settings, rng)
        registered = [
            shift_image(frames[m], registration_shift(self.renderer.offsets_px[m]))
            for m in MODALITIES
        ]
        crops = crop_cell(registered, centre, self.side, self.out_px)
        truth = {
            "class": cell_class.value,
            "radius_px": round(shape.radius_px, 2),
            "lobes": shape.lobe_count,
            "granules": int(shape.granules.shape[0]),
        }
        return {m: crops[i] for i, m in enumerate(MODALITIES)}, truth


def _to_png_depth(image: np.ndarray, bit_depth: int) -> np.ndarray:
    if bit_depth == 8:
        return image
    return (image.astype(np.uint16) << (16 - 12)).astype(np.uint16)  # 12-bit, MSB-aligned


def generate_dataset(
    out: Path,
    cells: int = PAPER_TOTAL,
    *,
    composition: Mapping[CellClass, float] | None = None,
    seed: int = 0,
    crop_um: float = DEFAULT_CROP_UM,
    bit_depth: int = 8,
    out_px: int | None = None,
    pixel_size_um: float = 0.25,
    progress: Callable[[int], None] | None = None,
) -> dict[CellClass, int]:
    """Write `cells` crops with the composition's exact (largest-remainder) class counts; return them.

    `bit_depth` 8 writes 8-bit PNGs (camera Mono8); 16 writes 16-bit PNGs of a 12-bit capture scaled to
    the full 16-bit range.
    """
    if bit_depth not in (8, 16):
        raise ParameterError(f"PNG bit depth must be 8 or 16, got {bit_depth}")
    counts = apportion(cells, composition or DEFAULT_COMPOSITION)
    labels = [c for c in CELL_CLASSES for _ in range(counts[c])]
    order = np.random.default_rng([seed, _ORDER_STREAM]).permutation(len(labels))
    tiles = CellTileRenderer(seed, pixel_size_um, crop_um, 8 if bit_depth == 8 else 12, out_px)
    out = Path(out)
    for modality in MODALITIES:
        for cell_class in CELL_CLASSES:
            (out / modality.value / cell_class.value).mkdir(parents=True, exist_ok=True)
    records = []
    for index, label_index in enumerate(order):
        cell_class = labels[int(label_index)]
        crops, truth = tiles.render(index, cell_class)
        cell_id = f"sim{seed}_{index:05d}"
        for modality, crop in crops.items():
            path = out / modality.value / cell_class.value / f"{cell_id}.png"
            if not cv2.imwrite(str(path), _to_png_depth(crop, bit_depth)):
                raise OSError(f"{path}: could not write PNG")
        records.append({"id": cell_id, **truth})
        if progress is not None:
            progress(index)
    info = {
        "generator": "leukoscope simulate dataset",
        "seed": seed,
        "cells": cells,
        "counts": {c.value: counts[c] for c in CELL_CLASSES},
        "composition": {c.value: v for c, v in (composition or DEFAULT_COMPOSITION).items()},
        "pixel_size_um": pixel_size_um,
        "crop_um": crop_um,
        "crop_px": tiles.out_px,
        "png_bit_depth": bit_depth,
        "modalities": [m.value for m in MODALITIES],
        "records": records,
    }
    (out / DATASET_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return counts
