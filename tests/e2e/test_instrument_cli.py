"""`leukoscope devices | acquire | calibrate` end to end on the simulated rig."""

from __future__ import annotations

from pathlib import Path

import genicam
import pytest
from typer.testing import CliRunner

from leukoscope.acquisition_files import storage
from leukoscope.cli import app
from leukoscope.config import load_settings
from leukoscope.errors import ConfigError
from leukoscope.types import Modality


@pytest.fixture
def small_frames(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # rig.calibration.path is relative: calibration/ lands here
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__WIDTH", "256")
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__HEIGHT", "192")
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)


def test_acquire_simulated(small_frames: None, tmp_path: Path) -> None:
    out = tmp_path / "S-cli"
    result = CliRunner().invoke(
        app, ["acquire", "--sample", "S-cli", "--fields", "3", "--simulate", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "saved 3 of 3 field(s)" in result.output
    assert storage.list_fields(out) == [0, 1, 2]
    assert storage.read_field(out, 2).frames[0].shape == (192, 256)


def test_acquire_with_simulated_camera_but_real_lights_is_a_clear_error(
    small_frames: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEUKOSCOPE__RIG__LIGHTS__PORT", str(tmp_path / "no-such-tty"))
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__BACKEND", "simulated")
    result = CliRunner().invoke(
        app, ["acquire", "--sample", "S", "--fields", "1", "--out", str(tmp_path / "S")]
    )
    assert result.exit_code != 0
    assert "sim://" in str(result.exception)


def test_acquire_with_the_default_config_needs_a_rig_and_never_simulates(
    small_frames: None, tmp_path: Path
) -> None:
    out = tmp_path / "REAL-001"
    result = CliRunner().invoke(
        app, ["acquire", "--sample", "REAL-001", "--fields", "1", "--out", str(out)]
    )
    assert isinstance(result.exception, ConfigError)
    assert "no rig configured" in str(result.exception)
    assert "--simulate" in str(result.exception)
    assert not any(out.iterdir())  # nothing acquired, nothing simulated


def test_calibrate_writes_offsets(
    small_frames: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # fluorescence registers on white-cell nuclei: a field needs a few of them
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__WIDTH", "512")
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__HEIGHT", "512")
    target = tmp_path / "rig.toml"
    result = CliRunner().invoke(
        app, ["calibrate", "--fields", "2", "--simulate", "--write", str(target)]
    )
    assert result.exit_code == 0, result.output
    offsets = load_settings(target, environ={}).rig.registration.offsets_px
    assert set(offsets) == set(Modality)
    assert offsets[Modality.FLUORESCENCE] == pytest.approx((-2.6, 3.4), abs=0.5)


def test_devices_lists_gentl_cameras() -> None:
    viky = Path(genicam.__file__).with_name("viky.cti")
    result = CliRunner().invoke(app, ["devices", "--producer", str(viky)])
    assert result.exit_code == 0, result.output
    assert "VikyTL_DEV_red" in result.output
    assert "Serial ports" in result.output


def test_calibrate_exposure_dark_flat_then_a_run_uses_them(
    small_frames: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the emulated controller on a pty and the simulated camera: the exposure brings
    the background to its target, dark and flat frames are saved, the next acquisition applies
    them (acquisition.json says so) and no longer warns."""
    import json

    import numpy as np

    target = tmp_path / "rig.toml"
    target.write_text("[rig.lights]\nport = 'sim://'\n[rig.camera]\nbackend = 'simulated'\n")
    run = CliRunner().invoke
    before = tmp_path / "before"
    result = run(app, ["--config", str(target), "acquire", "--sample", "B", "--fields", "1",
                       "--out", str(before)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no dark/flat calibration" in caplog.text
    assert json.loads((before / "acquisition.json").read_text())["correction"] == ""
    result = run(app, ["--config", str(target), "calibrate", "--fields", "2", "--exposure",
                       "--dark-frames", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    settings = load_settings(target, environ={})
    exposures = settings.rig.camera.exposure_us
    assert exposures[Modality.COLOR1] != 2000.0 and exposures[Modality.FLUORESCENCE] == 20000.0
    assert (tmp_path / "calibration" / "correction.npz").is_file()
    caplog.clear()
    after = tmp_path / "after"
    result = run(app, ["--config", str(target), "acquire", "--sample", "A", "--fields", "2",
                       "--out", str(after)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "calibration" not in caplog.text
    assert json.loads((after / "acquisition.json").read_text())["correction"].startswith(
        "dark+flat"
    )
    frames = storage.read_field(after, 0)
    full = 2**frames.bit_depth - 1 if frames.bit_depth else 255
    background = np.percentile(frames.frame(Modality.COLOR1), 95) / full
    assert abs(background - settings.rig.calibration.target_background) < 0.1
