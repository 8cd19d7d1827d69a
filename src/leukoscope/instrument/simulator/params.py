"""The simulator's knobs: sample, optics and sensor parameters, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from leukoscope.errors import ParameterError
from leukoscope.instrument.simulator.composition import (
    DEFAULT_COMPOSITION,
    Composition,
    validate_composition,
)
from leukoscope.types import EXTRA_CLASSES, MODALITIES, CellClass, Modality


def _default_atypical() -> dict[CellClass, float]:
    return dict.fromkeys(EXTRA_CLASSES, 1.0)


def _default_offsets() -> dict[Modality, tuple[float, float]]:
    # Where each modality's image lands relative to the sample, (dy, dx) px: sub-pixel between the
    # colours (lateral chromatic shift), a few pixels for fluorescence (other filter cube / beam path).
    return {
        Modality.COLOR1: (0.0, 0.0),
        Modality.COLOR2: (0.35, -0.25),
        Modality.COLOR3: (-0.3, 0.45),
        Modality.FLUORESCENCE: (2.6, -3.4),
    }


def _default_blur() -> dict[Modality, float]:
    # Gaussian sigma of the point spread (defocus + diffraction), px; red and fluorescence softer.
    return {
        Modality.COLOR1: 1.1,
        Modality.COLOR2: 1.0,
        Modality.COLOR3: 1.6,
        Modality.FLUORESCENCE: 1.5,
    }


def _default_rates() -> dict[Modality, float]:
    # Photo-electrons per microsecond per pixel at 100 % LED drive on clear background (bright-field)
    # or on a unit of nucleic-acid emission (fluorescence). Chosen so the default exposures of the rig
    # config (2 ms bright-field, 20 ms fluorescence, 50 % drive) give a bright-field background at
    # ~60 % of full well and nuclei at ~800 electrons (dim cytoplasm: ~50-150).
    return {
        Modality.COLOR1: 5.5,
        Modality.COLOR2: 6.0,
        Modality.COLOR3: 6.5,
        Modality.FLUORESCENCE: 0.08,
    }


@dataclass(frozen=True)
class SampleParams:
    """The blood film: field geometry, white cells per field, class composition, red-cell packing."""

    frame_shape: tuple[int, int] = (2048, 2048)
    pixel_size_um: float = 0.25
    wbc_per_field: float = 10.0
    composition: Composition = field(default_factory=lambda: dict(DEFAULT_COMPOSITION))
    rbc_coverage: float = 0.54  # fraction of the lattice sites holding a red cell
    rbc_diameter_um: float = 7.6
    platelets_per_1000um2: float = 0.6  # BCCD smears' median (docs/simulator.md)
    platelet_diameter_um: float = 2.5
    background_canvases: int = 2  # pre-rendered red-cell layers the fields are cut from
    canvas_side: int = 0  # side of those layers, px; 0 = the frame's larger side (at least 256)
    debris_per_1000um2: float = 0.15  # stain precipitate, red-cell fragments, dust (debris.py)
    smudge_fraction: float = 0.02  # smudge (basket) cells per white cell (smudge.py)
    lookalike_fraction: float = 0.024  # cells drawn partway toward another class (lookalike.py)
    atypical_fraction: float = 0.0  # nucleated cells drawn outside the five (atypical.py); 0 = none
    atypical_mix: dict[CellClass, float] = field(default_factory=_default_atypical)  # their weights

    def __post_init__(self) -> None:
        height, width = self.frame_shape
        if height < 32 or width < 32:
            raise ParameterError(f"frame_shape must be at least 32x32, got {self.frame_shape}")
        if not 0.02 <= self.pixel_size_um <= 5.0:
            raise ParameterError(f"pixel_size_um must be in [0.02, 5], got {self.pixel_size_um}")
        if not 0.0 <= self.wbc_per_field <= 1000.0:
            raise ParameterError(f"wbc_per_field must be in [0, 1000], got {self.wbc_per_field}")
        if not 0.0 <= self.rbc_coverage <= 1.0:
            raise ParameterError(f"rbc_coverage must be in [0, 1], got {self.rbc_coverage}")
        if not 0.0 <= self.platelets_per_1000um2 <= 20.0:
            raise ParameterError(
                f"platelets_per_1000um2 must be in [0, 20], got {self.platelets_per_1000um2}"
            )
        if not 1.0 <= self.platelet_diameter_um <= 5.0:
            raise ParameterError(
                f"platelet_diameter_um must be in [1, 5], got {self.platelet_diameter_um}"
            )
        if not 1 <= self.background_canvases <= 16:
            raise ParameterError(
                f"background_canvases must be in [1, 16], got {self.background_canvases}"
            )
        if self.canvas_side and self.canvas_side < 128:
            raise ParameterError(f"canvas_side must be 0 or >= 128, got {self.canvas_side}")
        if not 0.0 <= self.debris_per_1000um2 <= 20.0:
            raise ParameterError(
                f"debris_per_1000um2 must be in [0, 20], got {self.debris_per_1000um2}"
            )
        if not 0.0 <= self.smudge_fraction <= 0.5:
            raise ParameterError(f"smudge_fraction must be in [0, 0.5], got {self.smudge_fraction}")
        if not 0.0 <= self.lookalike_fraction <= 0.5:
            raise ParameterError(
                f"lookalike_fraction must be in [0, 0.5], got {self.lookalike_fraction}"
            )
        if not 0.0 <= self.atypical_fraction <= 1.0:
            raise ParameterError(
                f"atypical_fraction must be in [0, 1], got {self.atypical_fraction}"
            )
        mix = self.atypical_mix
        if (
            set(mix) - set(EXTRA_CLASSES)
            or any(w < 0 for w in mix.values())
            or not any(w > 0 for w in mix.values())
        ):
            allowed = ", ".join(c.value for c in EXTRA_CLASSES)
            raise ParameterError(f"atypical_mix: weights >= 0 (one > 0) over {allowed}")
        object.__setattr__(self, "composition", validate_composition(dict(self.composition)))

    def atypical_probabilities(self) -> list[float]:
        """The extra classes' shares among atypical cells, in `EXTRA_CLASSES` order."""
        weights = [float(self.atypical_mix.get(c, 0.0)) for c in EXTRA_CLASSES]
        return [w / sum(weights) for w in weights]

    def um_to_px(self, um: float) -> float:
        """A length in the sample plane, micrometres to pixels."""
        return um / self.pixel_size_um


@dataclass(frozen=True)
class OpticsParams:
    """Blur, vignetting and the known misregistration of each modality."""

    blur_sigma_px: dict[Modality, float] = field(default_factory=_default_blur)
    offsets_px: dict[Modality, tuple[float, float]] = field(default_factory=_default_offsets)
    vignetting: float = 0.25  # relative fall-off of illumination at the frame corners
    defocus_scale: float = 1.0  # multiplies every blur sigma (1 = in focus as calibrated)
    focus_drift: float = 0.15  # per-field defocus: blur x (1 + |N(0, focus_drift)|) (drift.py)
    illumination_drift: float = 0.03  # per-field, per-light lamp gain sd (relative)

    def __post_init__(self) -> None:
        for modality in MODALITIES:
            if modality not in self.blur_sigma_px or modality not in self.offsets_px:
                raise ParameterError(f"optics: no blur or offset given for {modality.value}")
            if not 0.0 <= self.blur_sigma_px[modality] <= 20.0:
                raise ParameterError(f"optics: blur sigma of {modality.value} must be in [0, 20]")
        if not 0.0 <= self.vignetting < 1.0:
            raise ParameterError(f"vignetting must be in [0, 1), got {self.vignetting}")
        if not 0.0 <= self.defocus_scale <= 10.0:
            raise ParameterError(f"defocus_scale must be in [0, 10], got {self.defocus_scale}")
        if not 0.0 <= self.focus_drift <= 1.0:
            raise ParameterError(f"focus_drift must be in [0, 1], got {self.focus_drift}")
        if not 0.0 <= self.illumination_drift <= 0.2:
            raise ParameterError(
                f"illumination_drift must be in [0, 0.2], got {self.illumination_drift}"
            )

    def sigma(self, modality: Modality) -> float:
        """Effective blur sigma of `modality`, px."""
        return self.blur_sigma_px[modality] * self.defocus_scale


@dataclass(frozen=True)
class SensorParams:
    """Light levels and the camera's sensor: full well, read noise, black level, bleaching."""

    photon_rate: dict[Modality, float] = field(default_factory=_default_rates)
    full_well_e: float = 10_000.0
    read_noise_e: float = 6.0
    black_level_e: float = 40.0
    fluorescence_background: float = (
        0.04  # plasma/mounting medium emission, units of nucleus emission
    )
    bleach_dose: float = 1.5e7  # percent x microseconds that bleaches emission to 1/e

    def __post_init__(self) -> None:
        if any(self.photon_rate.get(m, -1.0) < 0 for m in MODALITIES):
            raise ParameterError("sensor: photon_rate must be given and >= 0 for every modality")
        if self.full_well_e <= 0 or self.read_noise_e < 0 or self.black_level_e < 0:
            raise ParameterError("sensor: full_well_e > 0, read_noise_e >= 0, black_level_e >= 0")
        if self.bleach_dose <= 0:
            raise ParameterError(f"sensor: bleach_dose must be > 0, got {self.bleach_dose}")
