"""Config: defaults validate, errors name the key/value/allowed range, env overrides apply."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leukoscope.config import Settings, load_settings
from leukoscope.config.toml_render import render_default_toml, render_toml
from leukoscope.errors import ConfigError
from leukoscope.types import CELL_CLASSES, Modality

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leukoscope.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_file_round_trips_to_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, render_default_toml())
    assert load_settings(path, environ={}) == Settings()


def test_show_output_round_trips(tmp_path: Path) -> None:
    settings = load_settings(environ={"LEUKOSCOPE__PIPELINE__BATCH_SIZE": "7"})
    path = write(tmp_path, render_toml(settings))
    assert load_settings(path, environ={}).pipeline.batch_size == 7


def test_default_file_is_commented() -> None:
    text = render_default_toml()
    assert "# exposure per modality, microseconds" in text
    assert tomllib.loads(text)["rig"]["camera"]["exposure_us"]["fluorescence"] == 20000.0


def test_misspelt_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[pipeline]\nbatch_sise = 4\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "pipeline.batch_sise" in str(info.value)
    assert "unknown key" in str(info.value)


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, '[pipeline]\nhigh_water_mark = "lots"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert "pipeline.high_water_mark" in message and "'lots'" in message


def test_negative_exposure_names_bound(tmp_path: Path) -> None:
    path = write(tmp_path, "[rig.camera.exposure_us]\ncolor1 = -5.0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert "rig.camera.exposure_us.color1 = -5.0" in message
    assert "greater than 0" in message


def test_one_line_per_problem(tmp_path: Path) -> None:
    text = (
        "[pipeline]\nbatch_sise = 4\nhigh_water_mark = 'x'\n[rig.camera.exposure_us]\ncolor2 = -1\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ={})
    assert len(str(info.value).splitlines()) == 3


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[pipeline\n"), environ={})


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[pipeline]\nbatch_size = 4\n")
    env = {
        "LEUKOSCOPE__PIPELINE__BATCH_SIZE": "16",
        "LEUKOSCOPE__RIG__LIGHTS__PORT": "/dev/ttyUSB3",
        "UNRELATED": "1",
    }
    settings = load_settings(path, environ=env)
    assert settings.pipeline.batch_size == 16
    assert settings.rig.lights.port == "/dev/ttyUSB3"


def test_environment_value_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.batch_size"):
        load_settings(environ={"LEUKOSCOPE__PIPELINE__BATCH_SIZE": "0"})


def test_config_env_var_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[classifier]\nthreads = 3\n")
    assert load_settings(environ={"LEUKOSCOPE_CONFIG": str(path)}).classifier.threads == 3


def test_duplicate_light_channels_refused(tmp_path: Path) -> None:
    text = "[rig.lights.channels.color1]\nchannel = 2\n"
    with pytest.raises(ConfigError, match="own controller channel"):
        load_settings(write(tmp_path, text), environ={})


def test_reference_range_must_be_ordered(tmp_path: Path) -> None:
    text = "[report.reference_ranges.NEU]\nlow_percent = 80\nhigh_percent = 40\n"
    with pytest.raises(ConfigError, match=r"report\.reference_ranges\.NEU"):
        load_settings(write(tmp_path, text), environ={})


def test_defaults_cover_every_modality_and_class() -> None:
    settings = Settings()
    assert set(settings.rig.lights.channels) == set(Modality)
    assert set(settings.rig.camera.exposure_us) == set(Modality)
    # a reference range for each class of the white-cell differential (the five)
    assert set(settings.report.reference_ranges) == set(CELL_CLASSES)


def test_partial_tables_keep_other_defaults(tmp_path: Path) -> None:
    text = "[rig.camera.exposure_us]\ncolor1 = 5.0\n[rig.lights.channels.color2]\nintensity_percent = 80\n"
    settings = load_settings(write(tmp_path, text), environ={})
    assert settings.rig.camera.exposure_us[Modality.COLOR1] == 5.0
    assert settings.rig.camera.exposure_us[Modality.FLUORESCENCE] == 20000.0
    assert settings.rig.lights.channels[Modality.COLOR2].intensity_percent == 80
    assert settings.rig.lights.channels[Modality.COLOR2].channel == 2
