"""The real rig (skipped unless --hardware): the configured controller and camera, one field."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.config import load_settings
from leukoscope.instrument.acquisition import Acquisition
from leukoscope.instrument.rig import open_rig

pytestmark = pytest.mark.hardware


def test_one_field_on_the_real_rig(tmp_path: Path) -> None:
    rig_config = load_settings().rig  # $LEUKOSCOPE_CONFIG names the rig's file
    with open_rig(rig_config) as rig:
        info = rig.lights.identify()
        assert info.channels >= 4
        (result,) = Acquisition(rig).run("hardware-check", 1, tmp_path)
        assert result.ok, result.error
        assert rig.lights.lit() == {}
