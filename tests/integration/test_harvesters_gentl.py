"""Real harvesters on the GenTL simulators that ship in the genicam wheels.

- viky.cti (genicam 1.6, installed): free-running, no trigger nodes.
- TLSimu.cti + libVirtualFG.so (genicam 1.5.0 only): TriggerMode/TriggerSoftware, one frame per
  trigger. scripts/install.sh unpacks it under .venv/gentl; LEUKOSCOPE_TLSIMU_CTI overrides the path.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import genicam
import numpy as np
import pytest

from leukoscope.errors import CameraError, CameraTimeout
from leukoscope.instrument.camera import Camera
from leukoscope.instrument.gentl_devices import list_devices
from leukoscope.instrument.harvesters_camera import HarvestersCamera

VIKY = Path(genicam.__file__).with_name("viky.cti")
TLSIMU_SERIAL = "SN_InterfaceA_0"


def tlsimu_path() -> Path:
    """The TLSimu producer unpacked by scripts/install.sh (fails loudly if absent)."""
    override = os.environ.get("LEUKOSCOPE_TLSIMU_CTI")
    if override:
        return Path(override)
    found = sorted(
        Path(sys.prefix, "gentl").glob("*/genicam-1.5.0.data/purelib/genicam/TLSimu.cti")
    )
    if not found:
        pytest.fail("TLSimu.cti not found under .venv/gentl; run scripts/install.sh")
    return found[0]


@pytest.fixture
def tlsimu() -> Iterator[HarvestersCamera]:
    with HarvestersCamera.open([tlsimu_path()], TLSIMU_SERIAL, strict=False) as camera:
        camera.configure(pixel_format="Mono8", width=64, height=48, software_trigger=True)
        yield camera


def test_enumerates_devices() -> None:
    devices = list_devices([tlsimu_path()])
    assert [d.serial_number for d in devices] == [
        "SN_InterfaceA_0",
        "SN_InterfaceA_1",
        "SN_InterfaceB_0",
        "SN_InterfaceB_1",
    ]
    assert {d.model for d in devices} == {"TLSimuMono", "TLSimuColor"}
    assert [d.id for d in list_devices([VIKY])] == [
        "VikyTL_DEV_red",
        "VikyTL_DEV_green",
        "VikyTL_DEV_blue",
    ]


def test_missing_producer_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="not found"):
        list_devices([tmp_path / "absent.cti"])
    broken = tmp_path / "broken.cti"
    broken.write_bytes(b"not a shared library")
    with pytest.raises(CameraError, match="cannot be loaded"):
        list_devices([broken])


def test_open_by_serial_or_id() -> None:
    with pytest.raises(CameraError, match="matches several devices"):
        HarvestersCamera.open([tlsimu_path()], "TLSimuMono")
    with pytest.raises(CameraError, match="no camera 'nope'; found: SN_InterfaceA_0"):
        HarvestersCamera.open([tlsimu_path()], "nope")
    with HarvestersCamera.open([VIKY], "VikyTL_DEV_green") as camera:
        assert camera.name == "Viky 1"


def test_open_keeps_ctrl_c_working() -> None:
    before = signal.getsignal(signal.SIGINT)
    with HarvestersCamera.open([tlsimu_path()], TLSIMU_SERIAL):
        assert signal.getsignal(signal.SIGINT) is before


def test_strict_configure_names_missing_nodes() -> None:
    with HarvestersCamera.open([tlsimu_path()], TLSIMU_SERIAL) as camera:
        assert isinstance(camera, Camera)
        with pytest.raises(CameraError, match="no ExposureTime, Gain node"):
            camera.configure(exposure_us=2000.0, gain_db=1.0)
    with HarvestersCamera.open([VIKY], "0") as camera, pytest.raises(CameraError, match="Trigger"):
        camera.configure(software_trigger=True)


def test_one_frame_per_software_trigger(tlsimu: HarvestersCamera) -> None:
    assert tlsimu.hardware_trigger
    assert tlsimu.missing_nodes == []
    tlsimu.start()
    assert tlsimu.flush() == 0
    frames = []
    for _ in range(12):  # more than the 5 buffers: each one is re-queued
        tlsimu.trigger()
        frames.append(tlsimu.fetch(timeout_s=1.0))
    ids = [f.frame_id for f in frames]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for frame in frames:
        assert frame.image.shape == (48, 64) and frame.image.dtype == np.uint8
    # TLSimu's ramp moves one grey level per frame; each kept frame still holds its own ramp,
    # so the pixels were copied out before the buffer went back to the producer.
    starts = [int(f.image[0, 0]) for f in frames]
    assert starts == [(starts[0] + i) % 256 for i in range(12)]


def test_no_trigger_no_frame_times_out(tlsimu: HarvestersCamera) -> None:
    tlsimu.start()
    started = time.monotonic()
    with pytest.raises(CameraTimeout, match=r"no frame within 0\.2 s"):
        tlsimu.fetch(timeout_s=0.2)
    assert time.monotonic() - started < 2.0
    tlsimu.trigger()
    assert tlsimu.fetch(timeout_s=1.0).image.shape == (48, 64)


def test_stop_configure_restart(tlsimu: HarvestersCamera) -> None:
    tlsimu.start()
    with pytest.raises(CameraError, match="stop the camera"):
        tlsimu.configure(width=32)
    tlsimu.stop()
    tlsimu.configure(width=32, height=16)
    tlsimu.start()
    tlsimu.trigger()
    assert tlsimu.fetch(timeout_s=1.0).image.shape == (16, 32)


def test_colour_device_frames_are_height_width_components() -> None:
    with HarvestersCamera.open([tlsimu_path()], "SN_InterfaceA_1") as camera:
        camera.configure(pixel_format="RGB8", width=64, height=48, gain_db=0.0)
        camera.start()
        camera.trigger()
        frame = camera.fetch(timeout_s=1.0)
    assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8


def test_free_running_colour_device_without_trigger() -> None:
    with HarvestersCamera.open([VIKY], "0", strict=False) as camera:
        camera.configure(pixel_format="RGBa8")
        assert camera.missing_nodes == ["TriggerSoftware"]
        camera.start()
        camera.trigger()  # free-running: drops what was buffered
        first = camera.fetch(timeout_s=2.0)
        second = camera.fetch(timeout_s=2.0)
        assert first.image.shape == (400, 400, 4)
        assert second.frame_id > first.frame_id
        assert first.timestamp_s <= second.timestamp_s


def test_acquisition_through_harvesters_with_emulated_lights(tmp_path: Path) -> None:
    """The rig path on a real GenTL producer: configure per modality, trigger, fetch, save."""
    from leukoscope.acquisition_files import storage
    from leukoscope.config import RigConfig
    from leukoscope.instrument.acquisition import Acquisition
    from leukoscope.instrument.rig import open_rig

    config = RigConfig()
    config.lights.port = "sim://"  # emulated lights: the default is now no rig at all
    config.camera.backend = "harvesters"
    config.camera.producer_path = str(tlsimu_path())
    config.camera.device_id = TLSIMU_SERIAL
    config.camera.width, config.camera.height = 64, 48
    config.camera.strict_nodes = False  # TLSimu has no ExposureTime
    config.camera.fetch_timeout_s = 1.0
    config.registration.refine = False  # TLSimu's ramp has nothing to register on
    with open_rig(config) as rig:
        assert rig.simulated_lights and not rig.simulated_camera
        results = list(Acquisition(rig).run("S-gentl", 2, tmp_path))
        assert all(r.ok for r in results), [r.error for r in results]
        assert rig.state.lit() == {}
    assert storage.list_fields(tmp_path) == [0, 1]
    assert storage.read_field(tmp_path, 1).frames[0].shape == (48, 64)
