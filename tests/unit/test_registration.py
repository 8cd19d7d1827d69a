"""Registration: shift estimation on synthetic shifted images, the calibrated-offset bound, and the
simulator's known misregistration."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from leukoscope.config import RegistrationConfig
from leukoscope.errors import ParameterError
from leukoscope.instrument.registration import (
    MIN_RESPONSE,
    Registrar,
    apply_shift,
    calibrate,
    estimate_shift,
)
from leukoscope.types import Modality

SIDE = 256


def scene(seed: int = 0) -> np.ndarray:
    """Blobby texture on a bright background, like red cells in bright-field (float, periodic)."""
    rng = np.random.default_rng(seed)
    dots = (rng.random((SIDE, SIDE)) < 0.004).astype(np.float32)
    blobs = cv2.GaussianBlur(dots, (0, 0), 4.0)
    return blobs / blobs.max()


def fourier_shift(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Move content by (dy, dx) exactly (periodic), so the truth is known to any precision."""
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.fftfreq(image.shape[1])[None, :]
    phase = np.exp(-2j * np.pi * (fy * shift[0] + fx * shift[1]))
    return np.fft.ifft2(np.fft.fft2(image) * phase).real.astype(np.float32)


def bright_field(content: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    image = 3000.0 * (1.0 - 0.6 * content) + rng.normal(0.0, 40.0, content.shape)
    return np.clip(image, 0, 4095).astype(np.uint16)


def fluorescence(content: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    image = 60.0 + 400.0 * content + rng.normal(0.0, 25.0, content.shape)  # inverted, low SNR
    return np.clip(image, 0, 4095).astype(np.uint16)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.35, -0.25), (-2.6, 3.4), (5.55, -7.1)])
def test_same_modality_shift(shift: tuple[float, float]) -> None:
    rng = np.random.default_rng(1)
    content = scene()
    reference = bright_field(content, rng)
    moving = bright_field(fourier_shift(content, shift), rng)
    found = estimate_shift(reference, moving, cross_modal=False)
    assert found.dy == pytest.approx(-shift[0], abs=0.1)
    assert found.dx == pytest.approx(-shift[1], abs=0.1)
    assert found.response > 10


@pytest.mark.parametrize("shift", [(0.4, 0.3), (-2.6, 3.4)])
def test_bright_field_to_inverted_fluorescence(shift: tuple[float, float]) -> None:
    rng = np.random.default_rng(2)
    content = scene(3)
    reference = bright_field(content, rng)
    moving = fluorescence(fourier_shift(content, shift), rng)
    found = estimate_shift(reference, moving, cross_modal=True)
    assert found.dy == pytest.approx(-shift[0], abs=0.25)
    assert found.dx == pytest.approx(-shift[1], abs=0.25)


def test_apply_shift_undoes_the_displacement() -> None:
    content = scene(4) * 1000
    moved = fourier_shift(content, (1.5, -2.0))
    back = apply_shift(moved, (-1.5, 2.0))
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(back[inner] - content[inner]).max() < 0.05 * content.max()
    assert apply_shift(content.astype(np.uint16), (0.5, 0.5)).dtype == np.uint16


def frames_with(
    shifts: dict[Modality, tuple[float, float]], seed: int
) -> dict[Modality, np.ndarray]:
    rng = np.random.default_rng(seed)
    content = scene(seed)
    out = {}
    for modality, shift in shifts.items():
        moved = fourier_shift(content, shift)
        make = fluorescence if modality is Modality.FLUORESCENCE else bright_field
        out[modality] = make(moved, rng)
    return out


TRUE = {
    Modality.COLOR1: (0.0, 0.0),
    Modality.COLOR2: (0.35, -0.25),
    Modality.COLOR3: (-0.3, 0.45),
    Modality.FLUORESCENCE: (2.6, -3.4),
}


def test_registrar_refines_within_bound_and_registers() -> None:
    frames = frames_with(TRUE, seed=5)
    result = Registrar(RegistrationConfig()).register(frames)
    for modality, (dy, dx) in TRUE.items():
        assert result.shifts[modality] == pytest.approx((-dy, -dx), abs=0.25)
        assert result.frames[modality].shape == frames[modality].shape
        assert result.frames[modality].dtype == frames[modality].dtype
    assert result.refined[Modality.FLUORESCENCE]
    assert not result.refined[Modality.COLOR1]


def test_estimate_far_from_calibration_falls_back_to_it() -> None:
    frames = frames_with(TRUE, seed=6)
    config = RegistrationConfig(offsets_px={Modality.FLUORESCENCE: (10.0, 10.0)}, max_shift_px=2.0)
    shifts, refined = Registrar(config).shifts(frames)
    assert shifts[Modality.FLUORESCENCE] == (10.0, 10.0)
    assert not refined[Modality.FLUORESCENCE]
    assert refined[Modality.COLOR2]  # no calibration: (0, 0) prior, estimate 0.4 px away


def test_no_shared_features_falls_back() -> None:
    rng = np.random.default_rng(7)
    frames = {
        Modality.COLOR1: bright_field(scene(8), rng),
        Modality.FLUORESCENCE: rng.integers(0, 4000, (SIDE, SIDE)).astype(np.uint16),
    }
    config = RegistrationConfig(offsets_px={Modality.FLUORESCENCE: (-2.5, 3.5)})
    shifts, refined = Registrar(config).shifts(frames)
    assert shifts[Modality.FLUORESCENCE] == (-2.5, 3.5) and not refined[Modality.FLUORESCENCE]


def test_refine_off_applies_calibration_only() -> None:
    frames = frames_with(TRUE, seed=9)
    config = RegistrationConfig(refine=False, offsets_px={Modality.COLOR2: (-0.5, 0.5)})
    shifts, _ = Registrar(config).shifts(frames)
    assert shifts == {
        Modality.COLOR1: (0.0, 0.0),
        Modality.COLOR2: (-0.5, 0.5),
        Modality.COLOR3: (0.0, 0.0),
        Modality.FLUORESCENCE: (0.0, 0.0),
    }


def test_calibrate_takes_the_median_over_fields() -> None:
    fields = [frames_with(TRUE, seed) for seed in range(3)]
    offsets = calibrate(fields)
    for modality in (Modality.COLOR2, Modality.COLOR3, Modality.FLUORESCENCE):
        dy, dx = TRUE[modality]
        assert offsets[modality] == pytest.approx((-dy, -dx), abs=0.25)


def test_missing_reference_is_an_error() -> None:
    frames = frames_with({Modality.COLOR2: (0.0, 0.0)}, seed=1)
    with pytest.raises(ParameterError, match="reference color1"):
        Registrar().register(frames)


def test_simulator_known_shifts() -> None:
    """On the simulated sample, residuals against the renderer's ground truth are sub-pixel."""
    from leukoscope.instrument.simulator.frames import CaptureSettings, expose
    from leukoscope.instrument.simulator.params import SampleParams
    from leukoscope.instrument.simulator.render import FieldRenderer
    from leukoscope.instrument.simulator.sample import SimulatedSample
    from leukoscope.instrument.simulator.sensor import Sensor

    # a few white cells per field: fluorescence registers on their nuclei
    params = SampleParams(frame_shape=(256, 256), wbc_per_field=4.0)
    renderer = FieldRenderer(SimulatedSample(seed=3, params=params))
    offsets = renderer.offsets_px
    registrar = Registrar()
    errors = []
    for fov in range(3):
        frames = expose(
            Sensor(), renderer.field(fov), CaptureSettings(), np.random.default_rng(fov)
        )
        for modality, found in registrar.estimate(frames).items():
            truth = (-offsets[modality][0], -offsets[modality][1])
            error = float(np.hypot(found.dy - truth[0], found.dx - truth[1]))
            errors.append((error, found.response >= MIN_RESPONSE))
    accepted = [error for error, ok in errors if ok]
    # a field with no nucleus gives fluorescence nothing to lock on: such estimates must be refused
    assert len(accepted) >= 2 * len(errors) // 3
    assert np.median(accepted) < 0.5
    assert max(accepted) < 1.0  # no wrong estimate is accepted
