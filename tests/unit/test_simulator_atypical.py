"""Cells outside the five: off by default, own stream, recorded in the ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leukoscope.errors import ParameterError
from leukoscope.instrument.simulator.atypical import sample_atypical
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.streams import Stream
from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES, CellClass

SMALL = SampleParams(frame_shape=(384, 384), wbc_per_field=6)


def _truth(params: SampleParams, fields: int = 8) -> str:
    sample = SimulatedSample(4, params)
    return json.dumps([c.to_json(f) for f in range(fields) for c in sample.field(f).cells])


def test_off_by_default_and_share_zero_draws_nothing_new() -> None:
    assert SampleParams().atypical_fraction == 0.0
    assert int(Stream.ATYPICAL) == 15
    default = _truth(SMALL)
    assert all(c.value not in default for c in EXTRA_CLASSES if c != CellClass.RL)
    assert '"stage"' not in default


def test_share_draws_every_extra_class_recorded_in_truth() -> None:
    params = SampleParams(frame_shape=(384, 384), wbc_per_field=6, atypical_fraction=0.5)
    sample = SimulatedSample(4, params)
    cells = [c for f in range(40) for c in sample.field(f).cells]
    classes = {c.cell_class for c in cells}
    assert set(EXTRA_CLASSES) <= classes and set(CELL_CLASSES) & classes
    share = np.mean([c.cell_class in EXTRA_CLASSES for c in cells])
    assert 0.35 < share < 0.65
    ig = next(c for c in cells if c.cell_class == CellClass.IG)
    record = ig.to_json(0)
    assert record["class"] == "IG" and record["stage"] in {
        "promyelocyte",
        "myelocyte",
        "metamyelocyte",
    }


def test_extra_class_morphology() -> None:
    rng = np.random.default_rng(3)

    def many(c: CellClass) -> list:  # type: ignore[type-arg]
        return [sample_atypical(c, rng, 0.25) for _ in range(60)]

    nrbc, blast, ig = many(CellClass.NRBC), many(CellClass.BLAST), many(CellClass.IG)
    assert all(s.granules.shape[0] == 0 and s.granule_kind == "none" for s in nrbc)
    assert np.mean([s.radius_px for s in nrbc]) < np.mean([s.radius_px for s in blast])
    assert np.mean([s.nucleus_density for s in nrbc]) > 1.3
    assert all(s.nucleoli.shape[0] >= 1 for s in blast)
    assert {s.stage for s in ig} == {"promyelocyte", "myelocyte", "metamyelocyte"}
    assert all(s.notch is not None for s in ig if s.stage == "metamyelocyte")


def test_bad_share_is_one_error() -> None:
    with pytest.raises(ParameterError, match="atypical_fraction"):
        SampleParams(atypical_fraction=1.5)
    with pytest.raises(ParameterError, match="atypical_mix"):
        SampleParams(atypical_mix={CellClass.NEU: 1.0})
