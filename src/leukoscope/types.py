"""Domain types shared by every part: modalities, classes, frames, cells, results, summaries.

Order matters: modalities and classes appear in tensors, files and heads in the order defined here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class Modality(str, Enum):
    """A light source of the rig: three bright-field colours and one fluorescence excitation."""

    COLOR1 = "color1"
    COLOR2 = "color2"
    COLOR3 = "color3"
    FLUORESCENCE = "fluorescence"


MODALITIES: tuple[Modality, ...] = tuple(Modality)


class Illumination(str, Enum):
    """How a light reaches the camera: through the smear, or as a stain's emission."""

    BRIGHT_FIELD = "bright_field"  # transmitted light, absorbed by the stained cells
    FLUORESCENCE = "fluorescence"  # epifluorescence: the camera sees the stain's emission


ILLUMINATION: Mapping[Modality, Illumination] = MappingProxyType(
    {
        Modality.COLOR1: Illumination.BRIGHT_FIELD,
        Modality.COLOR2: Illumination.BRIGHT_FIELD,
        Modality.COLOR3: Illumination.BRIGHT_FIELD,
        Modality.FLUORESCENCE: Illumination.FLUORESCENCE,
    }
)
"""Each modality's kind of light: the one place that says which lights are bright field."""
NUCLEAR_STAIN: Modality = Modality.FLUORESCENCE
"""The light nuclei are found and focused on: the fluorescence of the DNA stain."""


def is_fluorescence(modality: Modality) -> bool:
    """Whether the camera sees a stain's emission under this light (else transmitted light)."""
    return ILLUMINATION[modality] is Illumination.FLUORESCENCE


def bright_field_modalities() -> tuple[Modality, ...]:
    """The bright-field lights, in modality order."""
    return tuple(m for m in MODALITIES if ILLUMINATION[m] is Illumination.BRIGHT_FIELD)


class CellClass(str, Enum):
    """Nucleated cells a model may name: the 5-part differential, then the classes a lab may add."""

    NEU = "NEU"
    LYM = "LYM"
    MO = "MO"
    EOS = "EOS"
    BAS = "BAS"
    IG = "IG"  # immature granulocytes: promyelocytes, myelocytes, metamyelocytes
    NRBC = "NRBC"  # nucleated red cells (erythroblasts): per 100 white cells, not white cells
    BLAST = "BLAST"
    RL = "RL"  # reactive lymphocytes


CELL_CLASSES: tuple[CellClass, ...] = (
    CellClass.NEU,
    CellClass.LYM,
    CellClass.MO,
    CellClass.EOS,
    CellClass.BAS,
)
"""The 5-part differential, in canonical order (a model trained on the five has these classes)."""
EXTRA_CLASSES: tuple[CellClass, ...] = (CellClass.IG, CellClass.NRBC, CellClass.BLAST, CellClass.RL)
"""Classes beyond the five that a lab may label and a model may carry (`ModelMeta.classes`)."""
NOT_WHITE: frozenset[CellClass] = frozenset({CellClass.NRBC})
"""Nucleated cells that are not white cells: counted per 100 white cells, outside the differential."""
UNIDENTIFIED = "unidentified"
"""Start of the flag reason of a cell the open-set score finds unlike every class of its model."""
UNSURE = "UNSURE"
"""Label a result may carry when flagged for review; the model's best guess is kept beside it."""


def parse_modalities(names: str | list[str] | tuple[str, ...]) -> tuple[Modality, ...]:
    """Parse modality names (comma-separated or a list) into canonical order; reject unknown ones."""
    from leukoscope.errors import ParameterError

    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    chosen: set[Modality] = set()
    for name in items:
        try:
            chosen.add(Modality(name))
        except ValueError:
            allowed = ", ".join(m.value for m in MODALITIES)
            raise ParameterError(f"unknown modality {name!r}; allowed: {allowed}") from None
    if not chosen:
        raise ParameterError("at least one modality is required")
    return tuple(m for m in MODALITIES if m in chosen)


@dataclass(frozen=True)
class Frame:
    """One camera image with the metadata needed to check it belongs to the current cycle."""

    image: (
        np.ndarray
    )  # H x W (mono) or H x W x C, uint8 or uint16, owned (copied out of any buffer)
    frame_id: int
    timestamp_s: float
    exposure_us: float | None = None
    lit: Modality | None = None  # the light source the camera/simulator reports as lit, if known


@dataclass(frozen=True)
class FrameSet:
    """The four registered frames of one field of view, in `modalities` order."""

    sample_id: str
    fov: int
    modalities: tuple[Modality, ...]
    frames: tuple[np.ndarray, ...]
    timestamps_s: tuple[float, ...]
    exposures_us: tuple[float, ...]
    lit: tuple[Modality, ...]  # which light was on for each frame, as verified during acquisition
    shifts_px: tuple[tuple[float, float], ...]  # (dy, dx) applied to register each frame
    settings_digest: str = ""
    pixel_size_um: float = 0.25
    bit_depth: int = 0  # significant bits of the samples (e.g. 12 in uint16); 0 = the dtype's

    @property
    def full_scale_shift(self) -> int:
        """Left shift that puts `bit_depth`-bit samples at the top of their integer type."""
        frame = self.frames[0]
        if not self.bit_depth or not np.issubdtype(frame.dtype, np.integer):
            return 0
        return max(0, np.iinfo(frame.dtype).bits - self.bit_depth)

    def frame(self, modality: Modality) -> np.ndarray:
        """The frame taken under `modality`."""
        return self.frames[self.modalities.index(modality)]


class CellKey(NamedTuple):
    """Unique identity of a cell; makes every stage idempotent."""

    sample_id: str
    fov: int
    cell_index: int


@dataclass(frozen=True)
class CellCrop:
    """One white cell cut out of a field of view in every modality."""

    key: CellKey
    bbox: tuple[int, int, int, int]  # x, y, width, height in frame pixels
    crops: np.ndarray  # (modalities, H, W) or (modalities, H, W, C), resized to the model input
    area_px: float = 0.0
    fluorescence_mean: float = 0.0


@dataclass(frozen=True)
class CellResult:
    """The classifier's answer for one cell."""

    key: CellKey
    cell_class: CellClass  # best guess, kept even when flagged
    probabilities: tuple[float, ...]  # one per class of the model, mean of heads
    head_probabilities: tuple[tuple[float, ...], ...] = ()  # heads x classes
    disagreement: float = 0.0  # cheap uncertainty from the spread between heads
    flagged: bool = False
    flag_reason: str = ""
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def label(self) -> str:
        """`UNSURE` when flagged, otherwise the class name."""
        return UNSURE if self.flagged else self.cell_class.value

    @property
    def unidentified(self) -> bool:
        """The open-set score set this cell apart: reviewed, never counted in the differential."""
        return self.flag_reason.startswith(UNIDENTIFIED)


class SampleStatus(str, Enum):
    """Where a sample stands."""

    RUNNING = "running"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"


class ClassCount(BaseModel):
    """Count of one class with its share and binomial 95% confidence interval (in percent)."""

    model_config = ConfigDict(extra="forbid")

    cell_class: CellClass
    count: int = Field(ge=0)
    percent: float
    ci_low_percent: float
    ci_high_percent: float


class SampleSummary(BaseModel):
    """The differential of one sample: what the live table, the PUB socket and the report show."""

    model_config = ConfigDict(extra="forbid")

    sample_id: str
    classes: list[ClassCount]
    cells_counted: int = Field(ge=0)
    cells_flagged: int = Field(ge=0)
    cells_unidentified: int = Field(default=0, ge=0)  # open-set flags: in no class, reviewed
    nrbc: int = Field(default=0, ge=0)  # nucleated red cells seen (a model that names them)
    nrbc_per_100_wbc: float = Field(default=0.0, ge=0.0)
    fields_done: int = Field(ge=0)
    fields_total: int | None = None
    fields_failed: int = Field(default=0, ge=0)
    fields_blank: int = Field(default=0, ge=0)  # failed fields whose frames held no image
    fields_saturated: int = Field(default=0, ge=0)  # failed fields whose frames were over-exposed
    status: SampleStatus = SampleStatus.RUNNING
    status_reason: str = ""
    elapsed_s: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)
    simulated: bool | None = False  # a simulated sample, not a patient's; None: not recorded

    @model_validator(mode="after")
    def _fields_add_up(self) -> SampleSummary:
        if self.fields_blank + self.fields_saturated > self.fields_failed:
            raise ValueError(
                f"{self.fields_blank} blank + {self.fields_saturated} saturated fields exceed "
                f"the {self.fields_failed} failed"
            )
        return self
