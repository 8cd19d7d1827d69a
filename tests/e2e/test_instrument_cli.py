"""`leukoscope devices | acquire | calibrate` end to end on the simulated rig."""

from __future__ import annotations

from pathlib import Path

import genicam
import pytest
from typer.testing import CliRunner

from leukoscope.cli import app
from leukoscope.config import load_settings
from leukoscope.errors import ConfigError
from leukoscope.instrument import storage
from leukoscope.types import Modality


@pytest.fixture
def small_frames(monkeypatch: pytest.MonkeyPatch) -> None:
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
