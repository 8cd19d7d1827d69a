"""What a viewer needs to know about each channel's light, for the OME metadata of saved fields
(OME-TIFF Channel attributes, OME-Zarr `omero` channels)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leukoscope.config import LightsConfig
from leukoscope.types import Modality, is_fluorescence


@dataclass(frozen=True)
class ChannelOptics:
    """One channel's light: display colour, wavelengths, illumination."""

    display_color: str  # "#rrggbb", the colour the channel is shown in
    wavelength_nm: float  # the light's peak wavelength (excitation for fluorescence); 0 = unknown
    emission_nm: float = 0.0  # the stain's emission peak (fluorescence only); 0 = unknown
    fluorescence: bool = False  # epifluorescence, else transmitted bright-field

    @property
    def seen_nm(self) -> float:
        """The wavelength the camera sees: the emission for fluorescence, else the light's own."""
        return self.emission_nm if self.fluorescence else self.wavelength_nm


def channel_optics(
    lights: LightsConfig, modalities: Iterable[Modality]
) -> dict[Modality, ChannelOptics]:
    """What the saved fields' OME metadata says about each configured light."""
    return {
        m: ChannelOptics(
            display_color=lights.channels[m].display_color,
            wavelength_nm=lights.channels[m].wavelength_nm,
            emission_nm=lights.channels[m].emission_nm,
            fluorescence=is_fluorescence(m),
        )
        for m in modalities
        if m in lights.channels
    }


def ome_color(hex_colour: str) -> int:
    """An "#rrggbb" colour as OME's signed 32-bit RGBA integer (alpha 255)."""
    value = (int(hex_colour[1:7], 16) << 8) | 0xFF
    return value - (1 << 32) if value >= 1 << 31 else value
