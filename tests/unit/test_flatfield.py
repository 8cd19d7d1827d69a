"""Dark/flat correction: the flat field's scale, what a corrected frame keeps, and the lamp level."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from leukoscope.errors import AcquisitionError
from leukoscope.instrument.flatfield import (
    META_FILE,
    RigCorrection,
    background_from,
    flat_from,
    frame_background,
    load,
)
from leukoscope.types import Modality

SHAPE = (128, 160)


def _vignetted(level: float, fall_off: float, black: float, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    r2 = ((yy / SHAPE[0] - 0.55) ** 2 + (xx / SHAPE[1] - 0.45) ** 2) / 0.5
    light = level * (1.0 - fall_off * r2)
    return np.clip(light + black + rng.normal(0, 2, SHAPE), 0, 4095).astype(np.uint16)


def test_a_corrected_frame_is_lit_as_its_brightest_part_and_keeps_the_black_level() -> None:
    rng = np.random.default_rng(0)
    dark = np.full(SHAPE, 40.0, np.float32) + rng.normal(0, 1, SHAPE).astype(np.float32)
    fields = [_vignetted(2000, 0.4, 40, rng) for _ in range(5)]
    flat = flat_from(fields, dark)
    assert flat.max() == pytest.approx(1.0) and flat.min() == pytest.approx(0.6, abs=0.05)
    correction = RigCorrection({Modality.COLOR1: dark}, {Modality.COLOR1: flat}, "t", "d")
    raw = _vignetted(2000, 0.4, 40, rng)
    corrected = correction.apply(Modality.COLOR1, raw, 4095).astype(np.float64)
    inner = corrected[8:-8, 8:-8]
    assert raw[8:-8, 8:-8].std() > 100  # the fall-off, uncorrected
    assert inner.std() < 15  # gone once corrected
    brightest = float(np.percentile(raw, 99.5))
    assert inner.mean() == pytest.approx(brightest, rel=0.02)  # the on-axis level everywhere
    dark_frame = np.clip(40 + rng.normal(0, 2, SHAPE), 0, None).astype(np.uint16)
    assert correction.apply(Modality.COLOR1, dark_frame, 4095).mean() == pytest.approx(40, abs=1)
    assert correction.apply(Modality.COLOR2, raw, 4095) is raw  # no maps for this light


def test_a_flat_field_of_frames_no_brighter_than_dark_is_refused() -> None:
    dark = np.full(SHAPE, 50.0, np.float32)
    with pytest.raises(AcquisitionError, match="no brighter"):
        flat_from([np.full(SHAPE, 50, np.uint16)] * 3, dark)


def _calibrated(rng: np.random.Generator) -> tuple[RigCorrection, np.ndarray]:
    dark = np.full(SHAPE, 40.0, np.float32) + rng.normal(0, 1, SHAPE).astype(np.float32)
    fields = [_vignetted(2000, 0.4, 40, rng) for _ in range(5)]
    flat = flat_from(fields, dark)
    level = background_from(fields, dark, flat)
    maps = {Modality.COLOR1: dark}, {Modality.COLOR1: flat}
    return RigCorrection(*maps, "t", "d", background={Modality.COLOR1: level}), dark


def test_the_lamp_level_of_each_frame_is_brought_back_to_the_calibrated_background() -> None:
    rng = np.random.default_rng(1)
    correction, _ = _calibrated(rng)
    level = correction.background[Modality.COLOR1]
    assert level == pytest.approx(2040, rel=0.02)
    steady = correction.apply(Modality.COLOR1, _vignetted(2000, 0.4, 40, rng), 4095)
    for lamp in (0.9, 1.12):  # a dimmer and a brighter lamp on this field
        frame = correction.apply(Modality.COLOR1, _vignetted(2000 * lamp, 0.4, 40, rng), 4095)
        assert frame.dtype == np.uint16 and frame.max() <= 4095
        assert frame_background(frame, correction.flat[Modality.COLOR1]) == pytest.approx(
            level, rel=0.005
        )
        assert frame.mean() == pytest.approx(steady.mean(), rel=0.01)
    # the dark frame keeps its black level: no gain is drawn from a frame without light
    dark_frame = np.clip(40 + rng.normal(0, 2, SHAPE), 0, None).astype(np.uint16)
    assert correction.apply(Modality.COLOR1, dark_frame, 4095).mean() == pytest.approx(40, abs=1)


def test_a_saturated_or_far_off_frame_is_not_scaled_to_the_calibrated_level() -> None:
    rng = np.random.default_rng(2)
    correction, _ = _calibrated(rng)
    level = correction.background[Modality.COLOR1]
    clipped = correction.apply(Modality.COLOR1, _vignetted(5000, 0.4, 40, rng), 4095)
    assert np.mean(clipped == 4095) > 0.5  # still saturated: field quality sees it
    failing = correction.apply(Modality.COLOR1, _vignetted(600, 0.4, 40, rng), 4095)
    assert (
        frame_background(failing, correction.flat[Modality.COLOR1]) < 0.5 * level
    )  # a failing lamp is not hidden


def test_calibrations_round_trip_and_older_ones_without_levels_still_load(tmp_path: Path) -> None:
    correction, _ = _calibrated(np.random.default_rng(3))
    loaded = load(correction.save(tmp_path / "new"))
    assert loaded is not None
    assert loaded.background[Modality.COLOR1] == pytest.approx(
        correction.background[Modality.COLOR1], abs=0.01
    )
    meta = json.loads((tmp_path / "new" / META_FILE).read_text())
    del meta["background"]  # as saved before the lamp level was recorded
    (tmp_path / "new" / META_FILE).write_text(json.dumps(meta))
    older = load(tmp_path / "new")
    assert older is not None and older.background == {}
    raw = _vignetted(1800, 0.4, 40, np.random.default_rng(4))
    expected = RigCorrection(older.dark, older.flat, "t", "d").apply(Modality.COLOR1, raw, 4095)
    assert np.array_equal(older.apply(Modality.COLOR1, raw, 4095), expected)
