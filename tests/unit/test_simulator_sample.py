"""Sample model: determinism, placement, ground truth and class morphology."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leukoscope.errors import ParameterError
from leukoscope.instrument.simulator.morphology import sample_shape
from leukoscope.instrument.simulator.params import OpticsParams, SampleParams, SensorParams
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.truth import WhiteCellShape
from leukoscope.types import CELL_CLASSES, CellClass

SMALL = SampleParams(frame_shape=(256, 256), wbc_per_field=6.0)


def _summary(sample: SimulatedSample, fields: int) -> list[tuple[str, float, float]]:
    return [
        (c.cell_class.value, round(c.centre_yx[0], 6), round(c.centre_yx[1], 6))
        for fov in range(fields)
        for c in sample.field(fov).cells
    ]


def test_same_seed_same_fields_in_any_order() -> None:
    a, b = SimulatedSample(5, SMALL), SimulatedSample(5, SMALL)
    b.field(3)  # visiting another field first changes nothing
    assert _summary(a, 4) == _summary(b, 4)
    assert np.array_equal(a.rbc_canvas(0), b.rbc_canvas(0))


def test_different_seeds_differ() -> None:
    assert _summary(SimulatedSample(1, SMALL), 3) != _summary(SimulatedSample(2, SMALL), 3)
    assert not np.array_equal(
        SimulatedSample(1, SMALL).rbc_canvas(0), SimulatedSample(2, SMALL).rbc_canvas(0)
    )


def test_white_cells_per_field_are_poisson_with_the_configured_mean() -> None:
    sample = SimulatedSample(0, SampleParams(frame_shape=(2048, 2048), wbc_per_field=10.0))
    counts = [len(sample.field(f).cells) for f in range(60)]
    assert 8.5 < float(np.mean(counts)) < 11.5
    assert np.var(counts) > 3.0  # not a fixed number per field


def test_ground_truth_bbox_and_border_flag_are_consistent() -> None:
    sample = SimulatedSample(0, SampleParams(frame_shape=(256, 256), wbc_per_field=8.0))
    cells = [c for f in range(10) for c in sample.field(f).cells]
    assert any(c.cut_by_border for c in cells) and any(not c.cut_by_border for c in cells)
    for cell in cells:
        x, y, w, h = cell.bbox
        assert x >= 0 and y >= 0 and x + w <= 256 and y + h <= 256
        if not cell.cut_by_border:
            assert w >= 1.6 * cell.radius_px and h >= 1.6 * cell.radius_px
            assert x <= cell.centre_yx[1] <= x + w and y <= cell.centre_yx[0] <= y + h
    for fov in range(10):  # no two white cells overlap
        field = sample.field(fov)
        for i, a in enumerate(field.cells):
            for b in field.cells[i + 1 :]:
                gap = np.hypot(a.centre_yx[0] - b.centre_yx[0], a.centre_yx[1] - b.centre_yx[1])
                assert gap > a.shape.extent_px + b.shape.extent_px


def test_ground_truth_json_record() -> None:
    sample = SimulatedSample(0, SMALL)
    fov = next(f for f in range(20) if sample.field(f).cells)
    record = sample.field(fov).cells[0].to_json(fov)
    assert record["field"] == fov and record["class"] in {c.value for c in CELL_CLASSES}
    assert (
        isinstance(record["bbox_xywh"], list)
        and len(record["bbox_xywh"]) == 4
        and isinstance(record["cut_by_border"], bool)
    )


def _shapes(cell_class: CellClass, n: int = 150) -> list[WhiteCellShape]:
    rng = np.random.default_rng(7)
    return [sample_shape(cell_class, rng, 0.25) for _ in range(n)]


def test_class_morphology_is_class_typical_with_overlap() -> None:
    radius = {c: np.array([s.radius_px for s in _shapes(c)]) for c in CELL_CLASSES}
    assert radius[CellClass.LYM].mean() < radius[CellClass.NEU].mean() < radius[CellClass.MO].mean()
    # white cells are about 40-80 px across at 0.25 um/px
    for c in CELL_CLASSES:
        assert 28 < 2 * radius[c].mean() < 80
    # real overlap: the largest lymphocytes are bigger than the smallest monocytes
    assert radius[CellClass.LYM].max() > radius[CellClass.MO].min()
    lobes = {c: [s.lobe_count for s in _shapes(c)] for c in CELL_CLASSES}
    assert all(n == 1 for n in lobes[CellClass.LYM])
    neu_lobes = [n for n in lobes[CellClass.NEU] if n > 1]
    assert set(neu_lobes) <= {2, 3, 4, 5} and len(set(neu_lobes)) >= 3
    assert 1 in lobes[CellClass.NEU]  # band forms: one curved lobe
    assert all(n in (2, 3) for n in lobes[CellClass.EOS])
    eos_granules = [s.granules.shape[0] for s in _shapes(CellClass.EOS)]
    assert min(eos_granules) < 60 < 90 <= max(eos_granules)  # some eosinophils carry few
    assert sum(s.notch is not None for s in _shapes(CellClass.MO)) > 50  # kidney-shaped nuclei


def test_bad_parameters_raise_parameter_error() -> None:
    with pytest.raises(ParameterError, match="frame_shape"):
        SampleParams(frame_shape=(8, 8))
    with pytest.raises(ParameterError, match="wbc_per_field"):
        SampleParams(wbc_per_field=-1)
    with pytest.raises(ParameterError, match="sum to 100"):
        SampleParams(composition={CellClass.NEU: 50.0})
    with pytest.raises(ParameterError, match="seed"):
        SimulatedSample(-1)
    with pytest.raises(ParameterError, match="field of view"):
        SimulatedSample(0, SMALL).field(-2)
    with pytest.raises(ParameterError, match="vignetting"):
        OpticsParams(vignetting=1.5)
    with pytest.raises(ParameterError, match="bleach_dose"):
        SensorParams(bleach_dose=0)


def test_platelets_come_from_their_own_stream_and_avoid_white_cells() -> None:
    with_platelets = SimulatedSample(3, SampleParams(frame_shape=(512, 512), wbc_per_field=6))
    without = SimulatedSample(
        3, SampleParams(frame_shape=(512, 512), wbc_per_field=6, platelets_per_1000um2=0.0)
    )
    for fov in range(4):
        field, bare = with_platelets.field(fov), without.field(fov)
        assert bare.platelets == ()
        assert [c.centre_yx for c in field.cells] == [c.centre_yx for c in bare.cells]
        assert (field.canvas, field.canvas_roll) == (bare.canvas, bare.canvas_roll)
        for platelet in field.platelets:
            for cell in field.cells:
                gap = math.dist(platelet.centre_yx, cell.centre_yx)
                assert gap >= cell.shape.extent_px + platelet.radius_px
    counts = [len(with_platelets.field(fov).platelets) for fov in range(4)]
    assert all(c > 0 for c in counts)


@pytest.mark.parametrize("bad", [{"platelets_per_1000um2": -1.0}, {"platelet_diameter_um": 9.0}])
def test_platelet_settings_are_bounded(bad: dict[str, float]) -> None:
    with pytest.raises(ParameterError, match=next(iter(bad))):
        SampleParams(**bad)  # type: ignore[arg-type]
