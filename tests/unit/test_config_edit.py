"""`calibrate --write` changes only the offsets and keeps the user's file as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.config import load_settings
from leukoscope.config.edit import write_offsets
from leukoscope.errors import ConfigError
from leukoscope.types import Modality

USER_FILE = """# our rig, bench 2
[rig.lights]
port = "/dev/ttyUSB0"   # the LC4 controller

[pipeline]
target_cells = 100
"""


def test_only_the_offsets_change_and_comments_stay(tmp_path: Path) -> None:
    path = tmp_path / "rig.toml"
    path.write_text(USER_FILE)
    offsets = {
        Modality.COLOR1: (0.0, 0.0),
        Modality.FLUORESCENCE: (-0.35000000000000003, 3.456),
    }
    settings = write_offsets(path, offsets)
    text = path.read_text()
    added = {"[rig.registration.offsets_px]", "color1 = [0.0, 0.0]", "fluorescence = [-0.35, 3.46]"}
    # every line the user wrote, comments included, unchanged and in order; only the offsets added
    assert [line for line in text.splitlines() if line not in added] == USER_FILE.splitlines()
    assert len(text.splitlines()) == len(USER_FILE.splitlines()) + len(added)
    assert "-0.35000000000000003" not in text and "fluorescence = [-0.35, 3.46]" in text
    assert settings.rig.registration.offsets_px[Modality.FLUORESCENCE] == (-0.35, 3.46)
    assert load_settings(path, environ={}).pipeline.target_cells == 100
    write_offsets(path, {Modality.COLOR1: (1.0, -1.0)})  # again: replaced, not duplicated
    assert path.read_text().count("[rig.registration.offsets_px]") == 1


def test_a_broken_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "rig.toml"
    path.write_text("[rig\nport = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        write_offsets(path, {Modality.COLOR1: (0.0, 0.0)})
    assert path.read_text() == "[rig\nport = "


def test_a_missing_file_is_created_with_only_the_offsets(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    write_offsets(path, {Modality.COLOR2: (0.5, -0.25)})
    assert load_settings(path, environ={}).rig.registration.offsets_px == {
        Modality.COLOR2: (0.5, -0.25)
    }
    assert len(path.read_text().splitlines()) <= 4
