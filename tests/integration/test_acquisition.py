"""Acquisition on the simulated rig: real serial driver on the emulated controller's pty, the simulated
camera, registration, OME-TIFF storage; failures, stops and lights-off on every path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import tifffile

from leukoscope.acquisition_files import storage
from leukoscope.config import RigConfig
from leukoscope.errors import LightDisconnected
from leukoscope.instrument.acquisition import (
    FAILED_FIELDS_FILE,
    Acquisition,
    AcquisitionSettings,
)
from leukoscope.instrument.rig import Rig, SimulationOptions, open_rig
from leukoscope.instrument.simulator.firmware import Fault
from leukoscope.types import MODALITIES, Modality

SHAPE = (96, 128)


def rig_config(**acquisition: object) -> RigConfig:
    config = RigConfig()
    config.lights.timeout_s = 2.0  # generous: a loaded machine answers late; faults fail fast
    config.lights.settle_ms = 0.0
    config.camera.pixel_format = "Mono12"
    config.camera.fetch_timeout_s = 1.0
    config.camera.retries = 1
    for key, value in acquisition.items():
        setattr(config.acquisition, key, value)
    return config


MakeRig = Callable[..., Rig]


@pytest.fixture
def make_rig() -> Iterator[MakeRig]:
    opened: list[Rig] = []

    def make(
        config: RigConfig | None = None,
        drop: frozenset[int] = frozenset(),
        shape: tuple[int, int] = SHAPE,
    ) -> Rig:
        options = SimulationOptions(seed=2, frame_shape=shape, drop_triggers=drop)
        rig = open_rig(config or rig_config(), simulate=True, options=options)
        opened.append(rig)
        return rig

    yield make
    for rig in opened:
        rig.close()
        assert not rig.emulator.serving, "emulator thread still running"


def channel_names(path: Path) -> list[str]:
    with tifffile.TiffFile(path) as tif:
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
    return [c["Name"] for c in pixels["Channel"]]


def test_ten_fields_saved_and_read_back_pixel_exact(make_rig: MakeRig, tmp_path: Path) -> None:
    rig = make_rig()
    results = list(Acquisition(rig).run("S-10", 10, tmp_path))
    assert [r.fov for r in results] == list(range(10))
    assert all(r.ok and r.path is not None for r in results)
    assert storage.list_fields(tmp_path) == list(range(10))
    meta = storage.read_acquisition_meta(tmp_path)
    assert (meta.sample_id, meta.frame_shape, meta.bit_depth) == ("S-10", SHAPE, 12)
    for result in results:
        assert result.frameset is not None and result.path is not None
        back = storage.read_field(tmp_path, result.fov)
        for ours, theirs in zip(result.frameset.frames, back.frames, strict=True):
            assert ours.dtype == np.uint16 and ours.shape == SHAPE
            np.testing.assert_array_equal(ours, theirs)
        assert back.shifts_px == result.frameset.shifts_px
        assert back.lit == MODALITIES
        assert channel_names(result.path) == [m.value for m in MODALITIES]
    assert rig.state.lit() == {}
    assert not (tmp_path / FAILED_FIELDS_FILE).exists()
    # the rig's own lights (colour, wavelength, illumination) are in each field's OME metadata
    with tifffile.TiffFile(results[0].path) as tif:
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
    lights = rig.config.lights.channels
    assert pixels["SignificantBits"] == 12
    with tifffile.TiffFile(results[0].path) as tif:
        image = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
    assert str(image["AcquisitionDate"]).startswith(str(datetime.now(timezone.utc).year))
    for channel, modality in zip(pixels["Channel"], MODALITIES, strict=True):
        assert channel["ExcitationWavelength"] == lights[modality].wavelength_nm
        assert channel["IlluminationType"] == (
            "Epifluorescence" if modality is Modality.FLUORESCENCE else "Transmitted"
        )


def test_frames_show_what_was_lit(make_rig: MakeRig) -> None:
    rig = make_rig(shape=(512, 512))  # enough cells for the fluorescence to register on
    (result,) = Acquisition(rig).run("S-lit", [3])
    assert result.frameset is not None
    means = {m: float(result.frameset.frame(m).mean()) for m in MODALITIES}
    # bright-field frames are bright; the fluorescence frame is mostly dark background
    assert min(means[m] for m in MODALITIES[:3]) > 4 * means[Modality.FLUORESCENCE]
    shifts = dict(zip(result.frameset.modalities, result.frameset.shifts_px, strict=True))
    assert result.refined[Modality.FLUORESCENCE]
    truth = rig.renderer.offsets_px[Modality.FLUORESCENCE]
    assert shifts[Modality.FLUORESCENCE] == pytest.approx((-truth[0], -truth[1]), abs=0.5)


@pytest.mark.parametrize("policy", ["continue", "stop"])
def test_field_timing_out_twice_is_failed_with_reason(
    make_rig: MakeRig, tmp_path: Path, policy: str
) -> None:
    # frame ids: field 0 -> 0..3, field 1 -> 4..7, field 2: color1 8, color2 9, color3 10 + retry 11
    rig = make_rig(rig_config(on_failed_field=policy), drop=frozenset({10, 11}))
    results = list(Acquisition(rig).run("S-fail", 4, tmp_path))
    failed = [r for r in results if not r.ok]
    assert [r.fov for r in failed] == [2]
    assert "color3: no valid frame after 2 trigger(s): timeout" in failed[0].error
    assert failed[0].triggers == 4
    if policy == "continue":
        assert [r.fov for r in results] == [0, 1, 2, 3]
        assert storage.list_fields(tmp_path) == [0, 1, 3]
    else:
        assert [r.fov for r in results] == [0, 1, 2]
        assert storage.list_fields(tmp_path) == [0, 1]
    # acquisition.json counts the fields saved, not the fields planned (4)
    meta = storage.read_acquisition_meta(tmp_path)
    assert meta.fields == len(storage.list_fields(tmp_path))
    recorded = json.loads((tmp_path / FAILED_FIELDS_FILE).read_text())
    assert recorded["failed"] == [{"fov": 2, "reason": failed[0].error}]
    assert rig.state.lit() == {}


def test_one_missed_frame_is_retried(make_rig: MakeRig) -> None:
    rig = make_rig(drop=frozenset({1}))
    (result,) = Acquisition(rig).run("S-retry", 1)
    assert result.ok and result.triggers == 5


def test_unexpected_light_fails_the_field(make_rig: MakeRig) -> None:
    rig = make_rig()
    # the stage hook runs after the run's ALLOFF: a channel comes on behind the driver's back
    rig.stage = lambda fov: rig.emulator.firmware.handle(b"ON 3")
    (result,) = Acquisition(rig).run("S-stuck", 1)
    assert not result.ok
    assert "controller reports channels {1: 50.0, 3: 50.0} lit, expected {1: 50.0}" in result.error
    assert rig.state.lit() == {}


def test_lights_off_when_consumer_stops_early(make_rig: MakeRig) -> None:
    rig = make_rig()
    run = Acquisition(rig).run("S-early", 5)
    first = next(run)
    assert first.ok
    rig.lights.on(2)
    run.close()
    assert rig.state.lit() == {}


def test_lights_off_when_consumer_raises(make_rig: MakeRig) -> None:
    rig = make_rig()
    with pytest.raises(KeyboardInterrupt):
        for _ in Acquisition(rig).run("S-ctrl-c", 5):
            rig.lights.on(4)
            raise KeyboardInterrupt
    assert rig.state.lit() == {}


def test_controller_unplugged_mid_run_is_a_clear_error(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.emulator.inject(Fault.UNPLUG, match="OFF")
    with pytest.raises(LightDisconnected):
        list(Acquisition(rig).run("S-unplug", 3))
    assert rig.state.lit() == {}


def test_subset_of_modalities(make_rig: MakeRig, tmp_path: Path) -> None:
    rig = make_rig()
    settings = AcquisitionSettings.from_config(rig.config, [Modality.FLUORESCENCE, Modality.COLOR2])
    (result,) = Acquisition(rig, settings).run("S-two", 1, tmp_path)
    assert result.frameset is not None
    assert result.frameset.modalities == (Modality.COLOR2, Modality.FLUORESCENCE)
    assert channel_names(storage.field_path(tmp_path, 0)) == ["color2", "fluorescence"]


def test_settings_digest_changes_with_exposure() -> None:
    settings = AcquisitionSettings.from_config(rig_config())
    changed = replace(settings, exposures_us={**settings.exposures_us, Modality.COLOR1: 1.0})
    assert settings.digest() != changed.digest()


def test_consumer_stopping_early_leaves_fields_equal_to_saved(
    make_rig: MakeRig, tmp_path: Path
) -> None:
    run = Acquisition(make_rig()).run("S-stop", 6, tmp_path)
    for _ in range(2):
        next(run)
    run.close()
    assert storage.list_fields(tmp_path) == [0, 1]
    assert storage.read_acquisition_meta(tmp_path).fields == 2
