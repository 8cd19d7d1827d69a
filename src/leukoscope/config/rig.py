"""The rig's settings: lights, camera, registration, acquisition."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from leukoscope import limits
from leukoscope.config.base import Section, merge_over
from leukoscope.types import ILLUMINATION, MODALITIES, Illumination, Modality, is_fluorescence


class LightChannel(Section):
    """One light source on the controller."""

    channel: int = Field(ge=1, le=4, description="controller output channel, 1-4")
    intensity_percent: float = Field(
        default=50.0, ge=0.0, le=100.0, description="LED drive, percent"
    )
    display_name: str = Field(default="", description="name shown to users")
    wavelength_nm: float = Field(default=0.0, ge=0.0, le=2000.0, description="peak wavelength, nm")
    display_color: str = Field(
        default="#ffffff",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="colour the review page draws this light in, #rrggbb",
    )
    emission_nm: float = Field(
        default=0.0,
        ge=0.0,
        le=2000.0,
        description="emission peak of the stain this light excites, nm (fluorescence; 0 = none)",
    )


_DEFAULT_LIGHTS: dict[Modality, tuple[str, float, str]] = {
    Modality.COLOR1: ("blue", 450.0, "#0000ff"),
    Modality.COLOR2: ("green", 530.0, "#00ff00"),
    Modality.COLOR3: ("red", 630.0, "#ff0000"),
    Modality.FLUORESCENCE: ("fluorescence excitation", 470.0, "#40ff60"),
}
"""Each light's default display name, peak wavelength (nm) and display colour."""
_DEFAULT_EMISSION_NM = 525.0
"""Acridine orange bound to DNA emits at about 525 nm: the default of the fluorescence lights."""
_DEFAULT_EXPOSURE_US: dict[Illumination, float] = {
    Illumination.BRIGHT_FIELD: 2000.0,
    Illumination.FLUORESCENCE: 20000.0,
}
"""Default exposure by kind of light: the stain's emission is far dimmer than transmitted light."""


def _default_lights() -> dict[Modality, LightChannel]:
    return {
        m: LightChannel(
            channel=i + 1,
            display_name=_DEFAULT_LIGHTS[m][0],
            wavelength_nm=_DEFAULT_LIGHTS[m][1],
            display_color=_DEFAULT_LIGHTS[m][2],
            emission_nm=_DEFAULT_EMISSION_NM if is_fluorescence(m) else 0.0,
        )
        for i, m in enumerate(MODALITIES)
    }


class LightsConfig(Section):
    """The serial LED controller."""

    port: str = Field(
        default="",
        description=(
            "serial device (/dev/ttyUSB0) or pyserial URL; sim:// = built-in emulator; "
            "empty = no rig configured"
        ),
    )
    baud: int = Field(default=115200, gt=0, le=4_000_000, description="baud rate, bit/s")
    timeout_s: float = Field(default=0.5, gt=0.0, le=60.0, description="reply timeout, seconds")
    retries: int = Field(default=2, ge=0, le=10, description="retries after a timeout")
    settle_ms: float = Field(
        default=2.0, ge=0.0, le=10_000.0, description="wait after light on, ms"
    )
    channels: dict[Modality, LightChannel] = Field(default_factory=_default_lights)

    @field_validator("channels", mode="before")
    @classmethod
    def _fill_channels(cls, value: Any) -> Any:
        return merge_over(_default_lights(), value)

    @model_validator(mode="after")
    def _distinct_channels(self) -> LightsConfig:
        used = [c.channel for c in self.channels.values()]
        if len(set(used)) != len(used):
            raise ValueError(f"each modality needs its own controller channel, got {used}")
        return self


Exposure = Annotated[float, Field(gt=0.0, le=limits.MAX_EXPOSURE_US)]
"""An exposure time in microseconds."""


def _default_exposures() -> dict[Modality, float]:
    return {m: _DEFAULT_EXPOSURE_US[ILLUMINATION[m]] for m in MODALITIES}


class CameraConfig(Section):
    """The GenICam camera (or its simulated twin)."""

    backend: Literal["harvesters", "simulated"] = Field(
        default="harvesters", description="harvesters (any GenTL producer) or simulated"
    )
    producer_path: str = Field(default="", description="GenTL producer .cti file")
    device_id: str = Field(default="", description="device serial number or id; empty = first")
    pixel_format: str = Field(default="Mono8", description="GenICam PixelFormat")
    exposure_us: dict[Modality, Exposure] = Field(
        default_factory=_default_exposures, description="exposure per modality, microseconds"
    )

    @field_validator("exposure_us", mode="before")
    @classmethod
    def _fill_exposures(cls, value: Any) -> Any:
        return merge_over(_default_exposures(), value)

    gain_db: float = Field(default=0.0, ge=0.0, le=48.0, description="analog gain, dB")
    pixel_size_um: float = Field(
        default=0.25,
        ge=limits.MIN_PIXEL_SIZE_UM,
        le=limits.MAX_PIXEL_SIZE_UM,
        description="pixel size in the sample plane, micrometres",
    )
    fetch_timeout_s: float = Field(default=2.0, gt=0.0, le=60.0, description="frame timeout, s")
    retries: int = Field(default=1, ge=0, le=10, description="re-triggers after a missed frame")
    width: int = Field(
        default=0, ge=0, le=limits.MAX_FRAME_SIDE, description="frame width, px; 0 = device default"
    )
    height: int = Field(
        default=0,
        ge=0,
        le=limits.MAX_FRAME_SIDE,
        description="frame height, px; 0 = device default",
    )
    strict_nodes: bool = Field(
        default=True, description="fail if the device lacks ExposureTime/Gain/TriggerSoftware"
    )


class RegistrationConfig(Section):
    """Calibrated offsets between modalities, refined per field."""

    offsets_px: dict[Modality, tuple[float, float]] = Field(
        default_factory=dict, description="(dy, dx) per modality, from `leukoscope calibrate`"
    )
    reference: Modality = Field(
        default=Modality.COLOR1, description="modality the others are registered to"
    )
    refine: bool = Field(default=True, description="refine the offset per field of view")
    max_shift_px: float = Field(default=8.0, ge=0.0, le=200.0, description="refinement bound, px")
    reuse_stable: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="0: refine every field; N: once N fields in a row refine to within 0.1 px of "
        "each other, apply their median to the next fields and refine only every Nth to check it "
        "(faster on a stable rig; the saved shifts differ from per-field refinement)",
    )


class AcquisitionConfig(Section):
    """How a run acquires fields of view."""

    data_dir: Path = Field(default=Path("acquisitions"), description="where samples are saved")
    on_failed_field: Literal["continue", "stop"] = Field(
        default="continue", description="what a run does after a field fails"
    )
    compression: Literal["none", "zlib"] = Field(
        default="none",
        description="lossless compression of saved fields (zlib: smaller, slower; "
        "docs/performance.md)",
    )
    format: Literal["ome-tiff", "ome-zarr"] = Field(
        default="ome-tiff",
        description="how fields are saved: one OME-TIFF file each, or one OME-Zarr (NGFF 0.4) "
        "folder each (napari; chunked for remote storage); batch reads both",
    )


class CalibrationConfig(Section):
    """Dark-frame and flat-field correction and exposure calibration (`leukoscope calibrate`)."""

    path: Path = Field(
        default=Path("calibration"),
        description="folder of the saved dark and flat frames (correction.npz, correction.json)",
    )
    apply: bool = Field(default=True, description="correct every frame before registration")
    max_age_days: float = Field(
        default=7.0, gt=0.0, le=3650.0, description="older calibrations are warned about, days"
    )
    target_background: float = Field(
        default=0.8,
        gt=0.0,
        lt=1.0,
        description="exposure calibration: bright-field background as a share of full scale",
    )


class RigConfig(Section):
    """Hardware: lights, camera, registration, acquisition."""

    lights: LightsConfig = Field(default_factory=LightsConfig)
    camera: CameraConfig = Field(default_factory=CameraConfig)
    registration: RegistrationConfig = Field(default_factory=RegistrationConfig)
    acquisition: AcquisitionConfig = Field(default_factory=AcquisitionConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
