"""The simulated blood sample: white cells placed per field of view, with ground truth. Seeded.

Every field is drawn from its own random stream `(seed, fov)`, so a field is the same whatever order
fields are visited in. White cells per field are Poisson, classes follow the composition, positions are
uniform over the frame (cells near the border are cut, as on the rig) without two white cells
overlapping.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from leukoscope.errors import ParameterError
from leukoscope.instrument.simulator.atypical import sample_atypical
from leukoscope.instrument.simulator.composition import probabilities
from leukoscope.instrument.simulator.debris import draw_debris
from leukoscope.instrument.simulator.lookalike import maybe_lookalike
from leukoscope.instrument.simulator.morphology import sample_shape
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.placement import Disc, clear_of
from leukoscope.instrument.simulator.platelets import draw_platelets
from leukoscope.instrument.simulator.rbc import rbc_layer
from leukoscope.instrument.simulator.smudge import draw_smudge
from leukoscope.instrument.simulator.streams import Stream
from leukoscope.instrument.simulator.truth import (
    Debris,
    FieldTruth,
    Platelet,
    Smudge,
    WhiteCell,
    WhiteCellShape,
)
from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES

_MIN_CANVAS = 256


def cell_bbox(
    shape: WhiteCellShape, centre_yx: tuple[float, float], frame: tuple[int, int]
) -> tuple[tuple[int, int, int, int], bool]:
    """Bounding box (x, y, w, h) of a cell clipped to the frame, and whether the border cuts it."""
    pts = shape.outline(48) + np.asarray(centre_yx)
    y0, x0 = math.floor(pts[:, 0].min()), math.floor(pts[:, 1].min())
    y1, x1 = math.ceil(pts[:, 0].max()) + 1, math.ceil(pts[:, 1].max()) + 1
    cut = y0 < 0 or x0 < 0 or y1 > frame[0] or x1 > frame[1]
    cy0, cx0 = max(y0, 0), max(x0, 0)
    cy1, cx1 = min(y1, frame[0]), min(x1, frame[1])
    return (cx0, cy0, max(cx1 - cx0, 0), max(cy1 - cy0, 0)), cut


class SimulatedSample:
    """A blood film: `field(fov)` gives the white cells (ground truth) of any field of view."""

    def __init__(self, seed: int = 0, params: SampleParams | None = None) -> None:
        if seed < 0:
            raise ParameterError(f"seed must be >= 0, got {seed}")
        self.seed = seed
        self.params = params or SampleParams()
        self._field = lru_cache(maxsize=64)(self._make_field)
        self._canvas = lru_cache(maxsize=16)(self._make_canvas)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """Height and width of a field of view, px."""
        return self.params.frame_shape

    @property
    def canvas_side(self) -> int:
        """Side of the (square, periodic) red-cell layers the fields are cut from."""
        return self.params.canvas_side or max(*self.frame_shape, _MIN_CANVAS)

    def field(self, fov: int) -> FieldTruth:
        """Ground truth of field `fov` (same answer on every call)."""
        if fov < 0:
            raise ParameterError(f"field of view index must be >= 0, got {fov}")
        return self._field(fov)

    def rbc_canvas(self, index: int) -> np.ndarray:
        """Red-cell (haemoglobin thickness) layer number `index`; read-only."""
        return self._canvas(index)

    def _make_canvas(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, Stream.CANVAS, index])
        p = self.params
        layer = rbc_layer(self.canvas_side, p.um_to_px(p.rbc_diameter_um), p.rbc_coverage, rng)
        layer.setflags(write=False)
        return layer

    def _make_field(self, fov: int) -> FieldTruth:
        rng = np.random.default_rng([self.seed, Stream.FIELD, fov])
        p = self.params
        count = int(rng.poisson(p.wbc_per_field))
        classes = rng.choice(len(CELL_CLASSES), size=count, p=probabilities(p.composition))
        cells: list[WhiteCell] = []
        placed: list[Disc] = []
        gap = p.um_to_px(1.0)
        for drawn, cls_index in enumerate(classes):
            cell_class = CELL_CLASSES[int(cls_index)]
            shape = sample_shape(cell_class, rng, p.pixel_size_um)
            if p.lookalike_fraction > 0:
                looks = np.random.default_rng([self.seed, Stream.LOOKALIKE, fov, drawn])
                shape = maybe_lookalike(shape, p.lookalike_fraction, looks, p.pixel_size_um)
            if p.atypical_fraction > 0:  # own stream: at 0 every other draw is as it was
                odd = np.random.default_rng([self.seed, Stream.ATYPICAL, fov, drawn])
                if odd.uniform() < p.atypical_fraction:
                    kind = EXTRA_CLASSES[int(odd.choice(4, p=p.atypical_probabilities()))]
                    shape = sample_atypical(kind, odd, p.pixel_size_um)
                    cell_class = kind
            centre = self._place(rng, shape.extent_px, placed, gap)
            if centre is None:
                continue  # the field is full; a real film would not hold it either
            placed.append((centre[0], centre[1], shape.extent_px))
            bbox, cut = cell_bbox(shape, centre, p.frame_shape)
            cells.append(WhiteCell(len(cells), cell_class, centre, shape, bbox, cut))
        canvas = int(rng.integers(0, p.background_canvases))
        roll = (int(rng.integers(0, self.canvas_side)), int(rng.integers(0, self.canvas_side)))
        return FieldTruth(
            fov,
            p.frame_shape,
            tuple(cells),
            canvas,
            roll,
            self._platelets(fov, placed),
            self._debris(fov, placed),
            self._smudge(fov, placed),
        )

    def _platelets(self, fov: int, white_cells: list[Disc]) -> tuple[Platelet, ...]:
        """The field's platelets, from their own stream (the rest of the field is unchanged)."""
        p = self.params
        rng = np.random.default_rng([self.seed, Stream.PLATELETS, fov])
        per_px2 = p.platelets_per_1000um2 / 1000.0 * p.pixel_size_um**2
        radius = p.um_to_px(p.platelet_diameter_um) / 2
        return draw_platelets(rng, p.frame_shape, per_px2, radius, white_cells)

    def _debris(self, fov: int, white_cells: list[Disc]) -> tuple[Debris, ...]:
        """The field's debris, from their own stream."""
        p = self.params
        rng = np.random.default_rng([self.seed, Stream.DEBRIS, fov])
        per_px2 = p.debris_per_1000um2 / 1000.0 * p.pixel_size_um**2
        return draw_debris(rng, p.frame_shape, per_px2, p.um_to_px(1.0), white_cells)

    def _smudge(self, fov: int, white_cells: list[Disc]) -> tuple[Smudge, ...]:
        """The field's smudge cells, from their own stream."""
        p = self.params
        rng = np.random.default_rng([self.seed, Stream.SMUDGE, fov])
        mean = p.smudge_fraction * p.wbc_per_field
        return draw_smudge(rng, p.frame_shape, mean, p.um_to_px(1.0), white_cells)

    def _place(
        self,
        rng: np.random.Generator,
        extent: float,
        placed: list[Disc],
        gap: float,
    ) -> tuple[float, float] | None:
        height, width = self.frame_shape
        for _ in range(60):
            y, x = float(rng.uniform(0, height)), float(rng.uniform(0, width))
            if clear_of(y, x, extent, placed, gap):
                return (y, x)
        return None
