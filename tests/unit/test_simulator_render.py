"""Renderer, optics and sensor: determinism, contrast per modality, misregistration, exposure."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.instrument.simulator.frames import CaptureSettings, capture_frameset
from leukoscope.instrument.simulator.params import OpticsParams, SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor, bleach_factor
from leukoscope.types import MODALITIES, Modality

PARAMS = SampleParams(frame_shape=(256, 256), wbc_per_field=4.0)
FL, C1 = Modality.FLUORESCENCE, Modality.COLOR1


def _renderer(seed: int = 3, optics: OpticsParams | None = None) -> FieldRenderer:
    return FieldRenderer(SimulatedSample(seed, PARAMS), optics)


def _field_with_cells(renderer: FieldRenderer) -> int:
    return next(f for f in range(50) if len(renderer.sample.field(f).cells) >= 2)


def test_same_seed_gives_byte_identical_frames_and_different_seeds_differ() -> None:
    a = capture_frameset(_renderer(3), Sensor(), "s", 2)
    b = capture_frameset(_renderer(3), Sensor(), "s", 2)
    c = capture_frameset(_renderer(4), Sensor(), "s", 2)
    for x, y, z in zip(a.frames, b.frames, c.frames, strict=True):
        assert x.tobytes() == y.tobytes()
        assert x.tobytes() != z.tobytes()


def test_fluorescence_lights_nuclei_and_leaves_red_cells_dark() -> None:
    renderer = _renderer()
    fov = _field_with_cells(renderer)
    truth = renderer.sample.field(fov)
    rad = renderer.field(fov)
    wbc = np.zeros(PARAMS.frame_shape, bool)
    yy, xx = np.mgrid[0:256, 0:256]
    for cell in truth.cells:
        wbc |= np.hypot(yy - cell.centre_yx[0], xx - cell.centre_yx[1]) < cell.shape.extent_px + 12
    # red cells: thick haemoglobin in the background layer, far from white cells
    from leukoscope.instrument.simulator.render import wrap_window

    hb = wrap_window(renderer.sample.rbc_canvas(truth.canvas), *truth.canvas_roll, (256, 256))
    rbc, plasma = (hb > 0.8) & ~wbc, (hb < 0.02) & ~wbc
    nucleus_peak = max(
        float(
            rad[FL][
                int(c.centre_yx[0]) - 10 : int(c.centre_yx[0]) + 10,
                int(c.centre_yx[1]) - 10 : int(c.centre_yx[1]) + 10,
            ].max()
        )
        for c in truth.cells
        if not c.cut_by_border
    )
    fl, c1 = rad[FL], rad[C1]
    assert fl[rbc].mean() < 0.6 * fl[plasma].mean()  # red cells darker than the plasma background
    assert nucleus_peak > 10 * fl[plasma].mean()  # nuclei light up
    assert c1[rbc].mean() < 0.7 * c1[plasma].mean()  # red cells visible in bright-field


def test_modalities_are_shifted_by_the_known_offsets() -> None:
    zero = {m: (0.0, 0.0) for m in MODALITIES}
    shifted = {**zero, FL: (3.0, -2.0)}
    base = _renderer(optics=OpticsParams(offsets_px=zero))
    moved = _renderer(optics=OpticsParams(offsets_px=shifted))
    assert moved.offsets_px[FL] == (3.0, -2.0)
    fov = _field_with_cells(base)
    a, b = base.field(fov, [FL])[FL], moved.field(fov, [FL])[FL]
    from leukoscope.instrument.simulator.optics import vignette

    v = vignette((256, 256), base.optics.vignetting, FL)
    a, b = a / v, b / v  # vignetting stays with the sensor, the image moves
    np.testing.assert_allclose(b[3 + 10 : -10, 10 : -10 - 2], a[10:-13, 12:-10], atol=2e-4)


def test_exposure_scales_signal_and_gain_is_honoured() -> None:
    renderer = _renderer()
    fov = _field_with_cells(renderer)
    short = CaptureSettings(exposures_us={m: 1000.0 for m in MODALITIES})
    long = CaptureSettings(exposures_us={m: 2000.0 for m in MODALITIES})
    black = Sensor().params.black_level_e * 4095 / Sensor().params.full_well_e
    a = capture_frameset(renderer, Sensor(), "s", fov, short).frame(C1).astype(float) - black
    b = capture_frameset(renderer, Sensor(), "s", fov, long).frame(C1).astype(float) - black
    assert b.mean() / a.mean() == pytest.approx(2.0, rel=0.03)
    assert b.std() > a.std()


def test_fluorescence_bleaches_with_dose() -> None:
    assert bleach_factor(1e5, 0.0, 1e7) > bleach_factor(1e7, 0.0, 1e7)
    assert bleach_factor(1e5, 5e6, 1e7) == pytest.approx(np.exp(-0.5) * bleach_factor(1e5, 0, 1e7))


def test_output_bit_depths() -> None:
    renderer = _renderer()
    eight = capture_frameset(renderer, Sensor(), "s", 0, CaptureSettings(bit_depth=8))
    twelve = capture_frameset(renderer, Sensor(), "s", 0, CaptureSettings(bit_depth=12))
    assert all(f.dtype == np.uint8 for f in eight.frames)
    assert all(f.dtype == np.uint16 and f.max() <= 4095 for f in twelve.frames)
    assert twelve.frame(C1).max() > 255  # really uses the 12-bit range
    # registered frame sets record the shift applied to each modality
    assert twelve.shifts_px[MODALITIES.index(FL)] == (-2.6, 3.4)
