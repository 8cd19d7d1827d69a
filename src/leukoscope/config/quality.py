"""`[pipeline.quality]`: when a field's images are judged unusable (pipeline/field_quality.py)."""

from __future__ import annotations

from pydantic import Field, model_validator

from leukoscope.config.base import Section


class QualityConfig(Section):
    """Field-quality gates: shares are of a frame's full scale or of its pixels, in [0, 1]."""

    blank_spread: float = Field(
        default=0.002,
        ge=0.0,
        le=1.0,
        description="a frame whose 0.1-99.9th percentile spread is at most this share of full "
        "scale holds no image: the field fails (blank)",
    )
    dark_bright_field: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="a bright-field frame whose 99.9th percentile is at most this share of full "
        "scale is dark: the field fails (dark)",
    )
    max_saturated_fluorescence: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="largest share of the fluorescence frame's pixels at full scale: above it "
        "its background is clipped (saturated_fluorescence; clipped nuclei: max_saturated_nuclei)",
    )
    max_saturated_nuclei: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="largest share of the pixels in the white cells' nucleus boxes at full scale "
        "in the fluorescence frame (saturated_nuclei)",
    )
    max_white_nuclei: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="largest share of the pixels in the nucleus boxes at full scale in every "
        "bright-field frame at once: such cells have lost their colour (saturated_cells)",
    )
    warn_saturated_background: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="a bright-field frame with more of its pixels at full scale is only noted "
        "(saturated_background): a white background is normal in bright field",
    )
    focus_warn: float = Field(
        default=0.13,
        ge=0.0,
        le=4.0,
        description="fields whose focus measure (normalised Laplacian variance of the nuclear "
        "channel, dimensionless, higher is sharper) is below this are flagged (focus_low)",
    )
    focus_fail: float = Field(
        default=0.11,
        ge=0.0,
        le=4.0,
        description="fields whose focus measure is below this fail (out_of_focus)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> QualityConfig:
        if self.focus_fail > self.focus_warn:
            raise ValueError(
                f"focus_fail {self.focus_fail} must not exceed focus_warn {self.focus_warn}"
            )
        return self
