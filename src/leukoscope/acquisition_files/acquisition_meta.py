"""`acquisition.json`: what a saved acquisition is (sample, modalities, pixel size, bit depth, frame
shape, per-channel exposure and light drive, field file format), validated on read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leukoscope import __version__, limits
from leukoscope.atomic import atomic_write_bytes, make_folder
from leukoscope.errors import StorageError
from leukoscope.ids import SampleId
from leukoscope.types import MODALITIES, Modality

META_FILE = "acquisition.json"
FORMAT_VERSION = 1
FIELD_FORMATS = ("ome-tiff", "ome-zarr")
"""How the fields of an acquisition are saved: one OME-TIFF file or one OME-Zarr folder each."""
FieldFormat = Literal["ome-tiff", "ome-zarr"]


class ChannelMeta(BaseModel):
    """How one modality was acquired."""

    model_config = ConfigDict(extra="forbid")

    modality: Modality
    exposure_us: float = Field(gt=0.0, le=limits.MAX_EXPOSURE_US, allow_inf_nan=False)
    intensity_percent: float = Field(ge=0.0, le=100.0)


class AcquisitionMeta(BaseModel):
    """Contents of `acquisition.json`."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    sample_id: SampleId
    modalities: list[Modality] = Field(min_length=1)
    pixel_size_um: float = Field(ge=limits.MIN_PIXEL_SIZE_UM, le=limits.MAX_PIXEL_SIZE_UM)
    bit_depth: int
    frame_shape: tuple[int, int]
    channels: list[ChannelMeta]
    settings_digest: str = ""
    software_version: str = __version__
    fields: int = Field(default=0, ge=0, description="fields of view planned or acquired")
    simulated: bool = False
    field_format: FieldFormat = "ome-tiff"
    correction: str = Field(
        default="",
        max_length=200,
        description="the dark/flat correction applied to the saved frames ('' = none)",
    )

    @field_validator("bit_depth")
    @classmethod
    def _bits(cls, value: int) -> int:
        if value not in limits.BIT_DEPTHS:
            raise ValueError(f"bit_depth must be one of {limits.BIT_DEPTHS}")
        return value

    @field_validator("frame_shape")
    @classmethod
    def _shape(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1 or max(value) > limits.MAX_FRAME_SIDE:
            raise ValueError(f"frame_shape sides must be 1-{limits.MAX_FRAME_SIDE} px")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AcquisitionMeta:
        if len(set(self.modalities)) != len(self.modalities):
            raise ValueError("modalities repeat")
        if self.modalities != [m for m in MODALITIES if m in self.modalities]:
            raise ValueError(
                "modalities must be in canonical order (color1, color2, color3, fluorescence)"
            )
        if [c.modality for c in self.channels] != self.modalities:
            raise ValueError("channels must list the modalities, in the same order")
        return self

    @property
    def dtype(self) -> np.dtype[Any]:
        """Pixel type of the fields: uint8 up to 8 bits, uint16 above."""
        return np.dtype(np.uint8 if self.bit_depth <= 8 else np.uint16)


def write_acquisition_meta(folder: Path, meta: AcquisitionMeta) -> Path:
    """Write (or replace) `acquisition.json` atomically; create the folder if needed."""
    folder = Path(folder)
    make_folder(folder)
    return atomic_write_bytes(folder / META_FILE, meta.model_dump_json(indent=2).encode("utf-8"))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (which of two values counts is not defined)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"key {key!r} is given twice")
        data[key] = value
    return data


def read_acquisition_meta(folder: Path) -> AcquisitionMeta:
    """Read and validate `acquisition.json`; StorageError says what is wrong."""
    path = Path(folder) / META_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StorageError(f"{path}: missing acquisition metadata") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"{path}: unreadable: {exc}") from None
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):  # a key given twice
            raise StorageError(f"{path}: {exc}") from None
        raise StorageError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise StorageError(f"{path}: not valid JSON (nested too deeply)") from None
    version = data.get("format_version", FORMAT_VERSION) if isinstance(data, dict) else None
    if isinstance(data, dict) and version != FORMAT_VERSION:
        raise StorageError(
            f"{path}: format_version {version!r} is not one this version reads ({FORMAT_VERSION}); "
            "save it again with a matching leukoscope"
        )
    try:
        return AcquisitionMeta.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'top level'}: {e['msg']}" for e in exc.errors()
        )
        raise StorageError(f"{path}: invalid acquisition metadata: {problems}") from None
