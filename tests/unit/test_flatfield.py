"""Dark/flat correction: the flat field's scale and what a corrected frame keeps."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.errors import AcquisitionError
from leukoscope.instrument.flatfield import RigCorrection, flat_from
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
