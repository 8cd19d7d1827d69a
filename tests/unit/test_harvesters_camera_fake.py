"""HarvestersCamera against a fake with harvesters' surface: faults the GenTL simulators lack."""

from __future__ import annotations

import time

import numpy as np
import pytest

from leukoscope.errors import CameraError, CameraTimeout, ParameterError
from leukoscope.instrument.camera import Camera
from leukoscope.instrument.harvesters_camera import HarvestersCamera
from tests.fakes.fake_harvesters import FakeImageAcquirer, gentl_error


def make(**kwargs: object) -> tuple[HarvestersCamera, FakeImageAcquirer]:
    acquirer = FakeImageAcquirer(**kwargs)  # type: ignore[arg-type]
    return HarvestersCamera(acquirer, name="fake"), acquirer


def test_is_a_camera() -> None:
    camera, _ = make()
    assert isinstance(camera, Camera)


def test_configure_sets_exposure_gain_format_and_trigger() -> None:
    camera, acquirer = make()
    camera.configure(exposure_us=1500.0, gain_db=3.0, pixel_format="Mono16", width=4, height=2)
    nm = acquirer.remote_device.node_map
    assert (nm.ExposureTime.value, nm.Gain.value, nm.PixelFormat.value) == (1500.0, 3.0, "Mono16")
    assert (nm.TriggerMode.value, nm.TriggerSource.value) == ("On", "Software")
    assert camera.hardware_trigger
    camera.start()
    camera.trigger()
    frame = camera.fetch(0.5)
    assert frame.image.shape == (2, 4) and frame.image.dtype == np.uint16
    assert frame.exposure_us == 1500.0


def test_missing_exposure_node_is_named() -> None:
    camera, _ = make(with_exposure=False)
    with pytest.raises(CameraError, match="no ExposureTime, Gain node"):
        camera.configure(exposure_us=100.0, gain_db=1.0)
    camera.strict = False
    camera.configure(exposure_us=100.0, gain_db=1.0)
    assert camera.missing_nodes == ["ExposureTime", "Gain"]


def test_zero_gain_needs_no_gain_node() -> None:
    camera, _ = make(with_exposure=False)
    camera.configure(gain_db=0.0)  # strict, yet fine: no Gain node means 0 dB
    with pytest.raises(CameraError, match="no Gain node"):
        camera.configure(gain_db=6.0)


def test_unknown_pixel_format_lists_the_supported_ones() -> None:
    camera, _ = make()
    with pytest.raises(CameraError, match="has Mono8, Mono16"):
        camera.configure(pixel_format="RGB8")


def test_timeout_becomes_camera_timeout() -> None:
    camera, _ = make()
    camera.configure()
    camera.start()
    with pytest.raises(CameraTimeout, match=r"no frame within 0\.05 s"):
        camera.fetch(0.05)  # no trigger, no frame


def test_zero_timeout_is_refused() -> None:
    camera, _ = make()
    camera.start()
    with pytest.raises(ParameterError):
        camera.fetch(0.0)


def test_gentl_error_becomes_camera_error() -> None:
    camera, acquirer = make()
    camera.configure()
    camera.start()
    acquirer.fail_next.append(gentl_error("device lost"))
    with pytest.raises(CameraError, match="fetch failed: device lost"):
        camera.fetch(0.1)


def test_dropped_frame_times_out_then_the_next_one_arrives() -> None:
    camera, _ = make(drop={1})
    camera.configure()
    camera.start()
    camera.trigger()
    with pytest.raises(CameraTimeout):
        camera.fetch(0.05)
    camera.trigger()
    assert camera.fetch(0.05).frame_id == 2


def test_endless_incomplete_buffers_still_time_out() -> None:
    camera, _ = make(incomplete=10**9)
    camera.configure()
    camera.start()
    camera.trigger()
    started = time.monotonic()
    with pytest.raises(CameraTimeout):
        camera.fetch(0.1)
    assert time.monotonic() - started < 30.0  # bounded, not timed: a loaded machine is slow


def test_incomplete_buffer_then_good_one() -> None:
    camera, acquirer = make(incomplete=2)
    camera.configure()
    camera.start()
    camera.trigger()
    assert camera.fetch(0.5).frame_id == 1
    assert acquirer.incomplete == 0


def test_data_is_copied_before_requeue() -> None:
    camera, acquirer = make()
    camera.configure()
    camera.start()
    camera.trigger()
    frame = camera.fetch(0.1)
    assert acquirer.queued == 1  # re-queued (the fake overwrote the memory with 0xEE)
    expected = (np.arange(8 * 6) + 1).astype(np.uint8).reshape(6, 8)
    np.testing.assert_array_equal(frame.image, expected)


def test_flush_drops_stale_frames() -> None:
    camera, acquirer = make()
    camera.configure()
    camera.start()
    acquirer.push_stale(3)
    assert camera.flush() == 3
    camera.trigger()
    assert camera.fetch(0.1).frame_id == 1


def test_short_payload_is_an_error() -> None:
    camera, acquirer = make()
    camera.configure()
    camera.start()
    acquirer.remote_device.node_map.Width.value = 100  # payload built for 100 x 6...
    camera.trigger()
    original = acquirer._buffer

    def short(frame_id: int):  # type: ignore[no-untyped-def]
        buffer = original(frame_id)
        buffer.payload.components[0].data = buffer.payload.components[0].data[:10]
        return buffer

    acquirer._buffer = short  # type: ignore[method-assign]
    with pytest.raises(CameraError, match="payload has 10 values"):
        camera.fetch(0.1)


def test_close_releases_everything_once() -> None:
    camera, acquirer = make()
    camera.start()
    camera.close()
    camera.close()
    assert acquirer.destroyed and not acquirer.started
