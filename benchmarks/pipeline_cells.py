"""Cells of simulated acquisitions cut exactly as the pipeline cuts them, each with its true class.

Fields are rendered and captured as `simulate acquisition` writes them, then segmented by the
segment workers' own function (`segmentation.segment` behind `field_quality.checked`, the configured
segmentation and quality settings, crops at the model's input side): the crops are the ones the
classify stage gets. Each detection is matched to the true white cell nearest its box centre (as
`benchmarks/count_accuracy.py` does); detections of nothing (debris, smudge) have no class. Used to
fit and measure the open-set score on what users' samples look like (`classifier/open_set.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from leukoscope.config import PipelineConfig
from leukoscope.errors import LeukoscopeError
from leukoscope.instrument.simulator.composition import DEFAULT_COMPOSITION
from leukoscope.instrument.simulator.frames import CaptureSettings, capture_frameset
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.instrument.simulator.truth import WhiteCell
from leukoscope.pipeline.field_quality import checked
from leukoscope.pipeline.segmentation import SegmentationParams, segment
from leukoscope.types import CellClass, FrameSet

MATCH_PX = 16.0
"""A detection is a true white cell's when their centres are this close (px)."""


@dataclass(frozen=True)
class CutCells:
    """Crops (B, M, S, S) in the acquisition's modality order, each cell's true class (None: a
    detection matched to no white cell) and its true maturation stage ("" for the five)."""

    crops: np.ndarray
    classes: list[CellClass | None]
    fields: int
    failed_fields: int
    stages: list[str]

    def of(self, wanted: set[CellClass]) -> np.ndarray:
        """Indices of the cells whose true class is in `wanted`."""
        return np.array([i for i, c in enumerate(self.classes) if c in wanted], dtype=np.int64)


def _true_cell(truth: Sequence[WhiteCell], bbox: tuple[int, int, int, int]) -> WhiteCell | None:
    x, y, w, h = bbox
    centre = np.array([y + h / 2, x + w / 2])
    best, best_distance = None, MATCH_PX
    for cell in truth:
        distance = float(np.linalg.norm(centre - np.asarray(cell.centre_yx)))
        if distance < best_distance:
            best, best_distance = cell, distance
    return best


def pipeline_cells(
    config: PipelineConfig,
    input_size: int,
    *,
    seed: int,
    fields: int,
    cells_per_field: float = 10.0,
    frame_side: int = 1024,
    atypical_fraction: float = 0.0,
    composition: Mapping[CellClass, float] | None = None,
    bit_depth: int = 12,
) -> CutCells:
    """Every cell the pipeline cuts from `fields` fields of one simulated sample (seed `seed`)."""
    params = SampleParams(
        frame_shape=(frame_side, frame_side),
        wbc_per_field=cells_per_field,
        composition=dict(composition if composition is not None else DEFAULT_COMPOSITION),
        atypical_fraction=atypical_fraction,
    )
    sample = SimulatedSample(seed, params)
    renderer, sensor = FieldRenderer(sample), Sensor()
    settings = CaptureSettings(bit_depth=bit_depth)
    cut = checked(
        functools.partial(
            segment, out_px=input_size, params=SegmentationParams.from_config(config.segmentation)
        ),
        config.quality,
    )
    crops: list[np.ndarray] = []
    classes: list[CellClass | None] = []
    stages: list[str] = []
    failed = 0
    for fov in range(fields):
        frameset: FrameSet = capture_frameset(renderer, sensor, f"sim{seed}", fov, settings)
        try:
            cells = cut(frameset)
        except LeukoscopeError:  # a field the pipeline fails (blank, out of focus...): no cells
            failed += 1
            continue
        truth = sample.field(fov).cells
        for cell in cells:
            crops.append(cell.crops)
            true = _true_cell(truth, cell.bbox)
            classes.append(None if true is None else true.cell_class)
            stages.append("" if true is None else true.shape.stage)
    stacked = np.stack(crops) if crops else np.zeros((0, 4, input_size, input_size), np.uint8)
    return CutCells(stacked, classes, fields, failed, stages)
