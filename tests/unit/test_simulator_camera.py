"""SimulatedCamera: Camera protocol over the simulated rig state."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from leukoscope.errors import CameraError, CameraTimeout
from leukoscope.instrument.camera import Camera
from leukoscope.instrument.simulator.camera import SimulatedCamera
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.state import SimulatedRigState
from leukoscope.types import MODALITIES, Modality

PARAMS = SampleParams(frame_shape=(192, 192), wbc_per_field=5.0)


@pytest.fixture
def rig() -> Iterator[tuple[SimulatedCamera, SimulatedRigState]]:
    state = SimulatedRigState()
    camera = SimulatedCamera(FieldRenderer(SimulatedSample(2, PARAMS)), state, seed=1)
    camera.configure(exposure_us=2000.0, pixel_format="Mono12")
    camera.start()
    yield camera, state
    camera.close()


def _snap(camera: SimulatedCamera) -> np.ndarray:
    camera.trigger()
    return camera.fetch(1.0).image.astype(float)


def test_implements_the_camera_protocol(rig: tuple[SimulatedCamera, SimulatedRigState]) -> None:
    assert isinstance(rig[0], Camera)


def test_no_light_gives_a_dark_frame(rig: tuple[SimulatedCamera, SimulatedRigState]) -> None:
    camera, _ = rig
    camera.trigger()
    frame = camera.fetch(1.0)
    assert frame.lit is None and frame.image.dtype == np.uint16
    assert frame.image.mean() < 30  # black level (~16 DN at 12 bit) and read noise only


def test_lit_modality_is_reported_and_shows(rig: tuple[SimulatedCamera, SimulatedRigState]) -> None:
    camera, state = rig
    for channel, modality in enumerate(MODALITIES, start=1):
        state.all_off()
        state.set_channel(channel, 50.0)
        camera.trigger()
        frame = camera.fetch(1.0)
        assert frame.lit is modality
        assert frame.exposure_us == 2000.0
    state.all_off()
    state.set_channel(1, 50.0)
    bright = _snap(camera)
    state.all_off()
    state.set_channel(4, 50.0)
    camera.configure(exposure_us=20000.0, pixel_format="Mono12")
    fluo = _snap(camera)
    assert bright.mean() > 1000  # bright-field: mostly clear background
    assert np.median(fluo) < 0.1 * np.median(bright)  # fluorescence: dark but for nuclei
    assert fluo.max() > 10 * np.median(fluo)


def test_intensity_and_exposure_scale_the_signal(
    rig: tuple[SimulatedCamera, SimulatedRigState],
) -> None:
    camera, state = rig
    state.set_channel(2, 20.0)
    low = _snap(camera).mean()
    state.set_channel(2, 40.0)
    high = _snap(camera).mean()
    camera.configure(exposure_us=4000.0, pixel_format="Mono12")
    longer = _snap(camera).mean()
    black = 16.4
    assert (high - black) / (low - black) == pytest.approx(2.0, rel=0.05)
    assert (longer - black) / (high - black) == pytest.approx(2.0, rel=0.05)


def test_wrong_light_shows_in_the_image(rig: tuple[SimulatedCamera, SimulatedRigState]) -> None:
    camera, state = rig
    state.set_channel(1, 50.0)
    first = _snap(camera)
    state.set_channel(3, 50.0)  # a second light left on: the frame adds both, lit is unknown
    camera.trigger()
    both = camera.fetch(1.0)
    assert both.lit is None
    assert both.image.astype(float).mean() > 1.5 * first.mean()


def test_fetch_without_trigger_times_out(rig: tuple[SimulatedCamera, SimulatedRigState]) -> None:
    camera, _ = rig
    start = time.monotonic()
    with pytest.raises(CameraTimeout, match=r"no frame within 0\.1 s"):
        camera.fetch(0.1)
    assert 0.09 < time.monotonic() - start < 30.0  # waited, and bounded (not timed)


def test_frame_ids_flush_and_dropped_frames() -> None:
    state = SimulatedRigState()
    renderer = FieldRenderer(SimulatedSample(2, PARAMS))
    with SimulatedCamera(renderer, state, drop_triggers={1}) as camera:
        camera.start()
        for _ in range(3):
            camera.trigger()
        assert [camera.fetch(1.0).frame_id for _ in range(2)] == [0, 2]  # frame 1 was lost
        camera.trigger()
        camera.trigger()
        assert camera.flush() == 2
        with pytest.raises(CameraTimeout):
            camera.fetch(0.01)
        stamp = time.time()
        camera.trigger()
        assert abs(camera.fetch(1.0).timestamp_s - stamp) < 1.0


def test_create_builds_a_camera_on_a_fresh_sample() -> None:
    state = SimulatedRigState()
    with SimulatedCamera.create(state, seed=4, sample=PARAMS, pixel_format="Mono8") as camera:
        camera.start()
        state.set_channel(2, 50.0)
        camera.trigger()
        frame = camera.fetch(1.0)
    assert frame.lit is Modality.COLOR2 and frame.image.shape == (192, 192)
    assert camera.renderer.sample.seed == 4


def test_errors_for_misuse() -> None:
    renderer = FieldRenderer(SimulatedSample(2, PARAMS))
    camera = SimulatedCamera(renderer, SimulatedRigState())
    with pytest.raises(CameraError, match="not started"):
        camera.trigger()
    with pytest.raises(CameraError, match="pixel format 'RGB8'"):
        camera.configure(pixel_format="RGB8")
    with pytest.raises(CameraError, match="ExposureTime"):
        camera.configure(exposure_us=0.0)
    camera.close()
    with pytest.raises(CameraError, match="closed"):
        camera.start()


def test_mono8_and_free_run(rig: tuple[SimulatedCamera, SimulatedRigState]) -> None:
    camera, state = rig
    state.set_channel(1, 50.0)
    camera.configure(pixel_format="Mono8", software_trigger=False)
    frame = camera.fetch(0.5)  # free-running: no trigger needed
    assert frame.image.dtype == np.uint8 and frame.image.shape == (192, 192)
    with pytest.raises(CameraError, match="TriggerMode"):
        camera.trigger()


def test_field_is_rendered_once_per_cycle_and_follows_the_stage(
    rig: tuple[SimulatedCamera, SimulatedRigState], monkeypatch: pytest.MonkeyPatch
) -> None:
    camera, state = rig
    calls: list[int] = []
    original = camera.renderer.field

    def spy(fov: int, *args: object) -> dict[Modality, np.ndarray]:
        calls.append(fov)
        return original(fov)

    monkeypatch.setattr(camera.renderer, "field", spy)
    images = []
    for fov in (0, 1):
        state.move_to(fov)
        for channel in range(1, 5):
            state.all_off()
            state.set_channel(channel, 50.0)
            images.append(_snap(camera))
    assert calls == [0, 1]
    assert not np.array_equal(images[0], images[4])  # another field shows another image


def test_repeated_fluorescence_exposure_bleaches(
    rig: tuple[SimulatedCamera, SimulatedRigState],
) -> None:
    camera, state = rig
    camera.configure(exposure_us=2_000_000.0, pixel_format="Mono16")
    state.set_channel(4, 100.0)
    first, second = _snap(camera), _snap(camera)
    assert second.sum() < 0.95 * first.sum()
