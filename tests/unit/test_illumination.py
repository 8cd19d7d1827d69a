"""The kind of light of each modality is data (one table in leukoscope.types), and the settings'
default lights and exposures follow it."""

from __future__ import annotations

from leukoscope.config import Settings
from leukoscope.types import (
    ILLUMINATION,
    MODALITIES,
    NUCLEAR_STAIN,
    Illumination,
    Modality,
    bright_field_modalities,
    is_fluorescence,
)


def test_every_modality_has_a_kind_of_light() -> None:
    assert set(ILLUMINATION) == set(MODALITIES)
    assert bright_field_modalities() == (Modality.COLOR1, Modality.COLOR2, Modality.COLOR3)
    assert [m for m in MODALITIES if is_fluorescence(m)] == [Modality.FLUORESCENCE]
    assert ILLUMINATION[NUCLEAR_STAIN] is Illumination.FLUORESCENCE


def test_default_settings_follow_the_kind_of_light() -> None:
    rig = Settings().rig
    assert {m: rig.camera.exposure_us[m] for m in MODALITIES} == {
        Modality.COLOR1: 2000.0,
        Modality.COLOR2: 2000.0,
        Modality.COLOR3: 2000.0,
        Modality.FLUORESCENCE: 20000.0,
    }
    emission = {m: c.emission_nm for m, c in rig.lights.channels.items()}
    assert emission == {m: 525.0 if is_fluorescence(m) else 0.0 for m in MODALITIES}
