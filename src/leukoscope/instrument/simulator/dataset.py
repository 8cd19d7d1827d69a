"""Generate a synthetic training set: four-modality cell crops in the layout `classifier/data.py` reads.

`root/<modality>/<CLASS>/<cell_id>.png`, the same relative paths in every modality folder, plus
`root/dataset.json` (provenance and per-cell ground truth). Cells are cut from full simulated fields
of view, rendered and captured by the very code of a simulated acquisition, with `imaging.crop_cell`,
exactly as the pipeline cuts cells: a model trained on cells rendered each on its own small tile
does not transfer to cells cut from fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from leukoscope.atomic import atomic_write_bytes
from leukoscope.errors import ParameterError
from leukoscope.imaging import crop_cell, crop_side_px
from leukoscope.instrument.simulator.composition import DEFAULT_COMPOSITION, PAPER_TOTAL, apportion
from leukoscope.instrument.simulator.frames import CaptureSettings, capture_frameset
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.request import check_dataset_request
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.instrument.simulator.streams import Stream
from leukoscope.limits import DEFAULT_CROP_UM
from leukoscope.types import EXTRA_CLASSES, MODALITIES, CellClass, Modality

DATASET_FILE = "dataset.json"
ATYPICAL_SHARE = 0.25
"""Share of white cells drawn outside the five in the fields a dataset with extra classes is cut from."""


class FieldCells:
    """White cells cut from full simulated fields of view, exactly as the pipeline cuts them.

    Fields are rendered and captured by the same code as a simulated acquisition (optics, noise,
    registration), and each cell is cut with `imaging.crop_cell` around its centre, moved by a few
    pixels as the segmentation's nucleus centroid is. Fields are visited in order until every class
    has its quota; a field holding no cell still needed is not rendered.
    """

    def __init__(
        self,
        seed: int = 0,
        pixel_size_um: float = 0.25,
        crop_um: float = DEFAULT_CROP_UM,
        bit_depth: int = 8,
        out_px: int | None = None,
        composition: Mapping[CellClass, float] | None = None,
        frame_shape: tuple[int, int] = (2048, 2048),
        wbc_per_field: float = 25.0,
        lookalike_fraction: float = SampleParams.lookalike_fraction,
        atypical_fraction: float = 0.0,
    ) -> None:
        if crop_um <= 0:
            raise ParameterError(f"crop size must be > 0 um, got {crop_um}")
        self.seed = seed
        params = SampleParams(
            frame_shape=frame_shape,
            pixel_size_um=pixel_size_um,
            wbc_per_field=wbc_per_field,
            composition=dict(composition or DEFAULT_COMPOSITION),
            lookalike_fraction=lookalike_fraction,
            atypical_fraction=atypical_fraction,
        )
        self.sample = SimulatedSample(seed, params)
        self.renderer = FieldRenderer(self.sample)
        self.sensor = Sensor()
        self.settings = CaptureSettings(bit_depth=bit_depth)
        self.side = crop_side_px(pixel_size_um, crop_um)
        self.out_px = out_px or self.side

    def _inside(self, centre: tuple[float, float]) -> bool:
        height, width = self.sample.frame_shape
        half = self.side / 2 + 2
        return half <= centre[0] <= height - half and half <= centre[1] <= width - half

    def cells(
        self, quotas: Mapping[CellClass, int], max_fields: int = 100_000
    ) -> Iterator[tuple[CellClass, dict[Modality, np.ndarray], dict[str, Any]]]:
        """(class, crop per modality, ground truth) until every class has its quota."""
        remaining = dict(quotas)
        for fov in range(max_fields):
            if not any(remaining.values()):
                return
            wanted = [
                cell
                for cell in self.sample.field(fov).cells
                if remaining.get(cell.cell_class, 0) > 0
                and not cell.cut_by_border
                and self._inside(cell.centre_yx)
            ]
            if not wanted:
                continue
            frameset = capture_frameset(self.renderer, self.sensor, "dataset", fov, self.settings)
            rng = np.random.default_rng([self.seed, Stream.DATASET_CELLS, fov])
            for cell in wanted:
                if remaining[cell.cell_class] <= 0:
                    continue
                remaining[cell.cell_class] -= 1
                jitter = rng.normal(0.0, 0.03 * self.side, 2)
                centre = (
                    cell.centre_yx[0] + float(jitter[0]),
                    cell.centre_yx[1] + float(jitter[1]),
                )
                crops = crop_cell(frameset.frames, centre, self.side, self.out_px)
                truth = {
                    "class": cell.cell_class.value,
                    "field": fov,
                    "radius_px": round(cell.shape.radius_px, 2),
                    "lobes": cell.shape.lobe_count,
                    "granules": int(cell.shape.granules.shape[0]),
                    **cell.shape.lookalike_json(),
                    **({"stage": cell.shape.stage} if cell.shape.stage else {}),
                }
                yield cell.cell_class, {m: crops[i] for i, m in enumerate(MODALITIES)}, truth
        missing = {c.value: n for c, n in remaining.items() if n > 0}
        raise ParameterError(f"could not find enough cells in {max_fields} fields: {missing}")


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
    frame_shape: tuple[int, int] = (2048, 2048),
    wbc_per_field: float = 25.0,
    lookalike_fraction: float = SampleParams.lookalike_fraction,
    extra: Mapping[CellClass, int] | None = None,
) -> dict[CellClass, int]:
    """Write `cells` crops with the composition's exact (largest-remainder) class counts; return them.

    `extra` adds that many cells of classes outside the five (IG, NRBC, BLAST, RL: a lab's labels),
    drawn from fields where ATYPICAL_SHARE of the white cells are such cells.

    `bit_depth` 8 writes 8-bit PNGs (camera Mono8); 16 writes 16-bit PNGs of a 12-bit capture scaled to
    the full 16-bit range.
    """
    if bit_depth not in (8, 16):
        raise ParameterError(f"PNG bit depth must be 8 or 16, got {bit_depth}")
    check_dataset_request(cells, crop_side_px(pixel_size_um, crop_um), out_px, bit_depth)
    composition = composition or DEFAULT_COMPOSITION
    counts = apportion(cells, composition)
    extras = {c: int(n) for c, n in (extra or {}).items() if n}
    if set(extras) - set(EXTRA_CLASSES) or any(n < 0 for n in extras.values()):
        raise ParameterError(f"extra classes are {', '.join(c.value for c in EXTRA_CLASSES)}, >= 0")
    counts.update(extras)
    source = FieldCells(
        seed, pixel_size_um, crop_um, 8 if bit_depth == 8 else 12, out_px, composition,
        frame_shape, wbc_per_field, lookalike_fraction, ATYPICAL_SHARE if extras else 0.0,
    )  # fmt: skip
    out = Path(out)
    for modality in MODALITIES:
        for cell_class in counts:
            (out / modality.value / cell_class.value).mkdir(parents=True, exist_ok=True)
    records = []
    for index, (cell_class, crops, truth) in enumerate(source.cells(counts)):
        cell_id = f"sim{seed}_{index:05d}"
        for modality, crop in crops.items():
            path = out / modality.value / cell_class.value / f"{cell_id}.png"
            ok, data = cv2.imencode(".png", _to_png_depth(crop, bit_depth))
            if not ok:
                raise OSError(f"{path}: could not write PNG")
            atomic_write_bytes(path, data.tobytes(), sync=False)
        records.append({"id": cell_id, **truth})
        if progress is not None:
            progress(index)
    info = {
        "generator": "leukoscope simulate dataset",
        "seed": seed,
        "cells": cells,
        "counts": {c.value: n for c, n in counts.items()},
        "composition": {c.value: v for c, v in (composition or DEFAULT_COMPOSITION).items()},
        "pixel_size_um": pixel_size_um,
        "crop_um": crop_um,
        "crop_px": source.out_px,
        "frame_shape": list(frame_shape),
        "wbc_per_field": wbc_per_field,
        "lookalike_fraction": lookalike_fraction,
        **({"atypical_fraction": ATYPICAL_SHARE} if extras else {}),
        "png_bit_depth": bit_depth,
        "modalities": [m.value for m in MODALITIES],
        "records": records,
    }
    atomic_write_bytes(out / DATASET_FILE, json.dumps(info, indent=1).encode("utf-8"))
    return counts
