"""Saved acquisitions: a folder per sample with `acquisition.json` and one OME-TIFF per field of view.

Layout::

    <folder>/acquisition.json     AcquisitionMeta (pydantic): sample, modalities, pixel size, bit depth,
                                  frame shape, per-channel exposure and light drive, rig digest, ...
    <folder>/fov_0000.ome.tif     C x Y x X (one channel per modality, channel names = modality names,
                                  PhysicalSizeX/Y in um, per-plane ExposureTime); the OME Image
                                  Description holds the field's JSON extras (timestamps, lit lights,
                                  registration shifts), so a field reads back as the FrameSet it was.

Every write is atomic (temporary file in the same folder, fsync, rename): a crash leaves either the old
state or the new file, never a half-written field under the real name. The reader validates everything
and raises StorageError naming the file and the problem. The files open in Fiji, napari and QuPath.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leukoscope import __version__, limits
from leukoscope.errors import StorageError
from leukoscope.ids import SampleId
from leukoscope.types import MODALITIES, FrameSet, Modality

META_FILE = "acquisition.json"
FORMAT_VERSION = 1
_FIELD_RE = re.compile(r"^fov_(\d{4,})\.ome\.tif$")
_BIT_DEPTHS = limits.BIT_DEPTHS


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

    @field_validator("bit_depth")
    @classmethod
    def _bits(cls, value: int) -> int:
        if value not in _BIT_DEPTHS:
            raise ValueError(f"bit_depth must be one of {_BIT_DEPTHS}")
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


def field_path(folder: Path, fov: int) -> Path:
    """Path of field `fov`'s OME-TIFF."""
    return Path(folder) / f"fov_{fov:04d}.ome.tif"


@contextmanager
def _atomic(path: Path) -> Iterator[IO[bytes]]:
    """Write `path` through a temporary file in the same folder, fsync, rename; clean up on error."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):  # disk full, read-only
            raise StorageError(f"cannot write {path}: {_why(exc, path.parent)}") from None
        raise
    _fsync_dir(path.parent)


def _why(exc: OSError, folder: Path) -> str:
    """The system's reason, saying so when the disk is full (some writers report a short write)."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return reason
    with suppress(OSError):
        if shutil.disk_usage(folder).free < 1 << 20:
            return f"{reason} (no space left on the device)"
    return reason


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    with _atomic(path) as handle:
        handle.write(data)
    return path


def write_acquisition_meta(folder: Path, meta: AcquisitionMeta) -> Path:
    """Write (or replace) `acquisition.json` atomically; create the folder if needed."""
    folder = Path(folder)
    _make_folder(folder)
    return atomic_write_bytes(folder / META_FILE, meta.model_dump_json(indent=2).encode("utf-8"))


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create folder {folder}: {exc.strerror or exc}") from None


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
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StorageError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise StorageError(f"{path}: not valid JSON (nested too deeply)") from None
    try:
        return AcquisitionMeta.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'top level'}: {e['msg']}" for e in exc.errors()
        )
        raise StorageError(f"{path}: invalid acquisition metadata: {problems}") from None


def _check_frameset(frameset: FrameSet) -> np.ndarray:
    if not frameset.frames:
        raise StorageError(f"field {frameset.fov}: frame set holds no frames")
    if len(frameset.frames) != len(frameset.modalities):
        raise StorageError(
            f"field {frameset.fov}: {len(frameset.frames)} frames for "
            f"{len(frameset.modalities)} modalities"
        )
    first = frameset.frames[0]
    for frame in frameset.frames:
        if frame.ndim != 2 or frame.shape != first.shape or frame.dtype != first.dtype:
            raise StorageError(
                f"field {frameset.fov}: frames must be mono (H x W) of one shape and dtype, got "
                f"{[(f.shape, str(f.dtype)) for f in frameset.frames]}"
            )
    if first.dtype not in (np.uint8, np.uint16):
        raise StorageError(f"field {frameset.fov}: dtype {first.dtype} is not uint8 or uint16")
    return np.stack(frameset.frames)


@dataclass(frozen=True)
class ChannelOptics:
    """What a viewer needs to know about one channel's light (OME Channel attributes)."""

    display_color: str  # "#rrggbb", the colour the channel is shown in
    wavelength_nm: float  # the light's peak wavelength (excitation for fluorescence); 0 = unknown
    emission_nm: float = 0.0  # the stain's emission peak (fluorescence only); 0 = unknown
    fluorescence: bool = False  # epifluorescence, else transmitted bright-field


COMPRESSIONS = ("none", "zlib")
"""Lossless TIFF compressions a field can be written with (docs/performance.md has their cost)."""


def ome_color(hex_colour: str) -> int:
    """An "#rrggbb" colour as OME's signed 32-bit RGBA integer (alpha 255)."""
    value = (int(hex_colour[1:7], 16) << 8) | 0xFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _channel_metadata(frameset: FrameSet, optics: Mapping[Modality, ChannelOptics]) -> dict:
    channel: dict[str, list[Any]] = {"Name": [m.value for m in frameset.modalities]}
    chosen = [optics.get(m) for m in frameset.modalities]
    if all(o is not None for o in chosen):
        known = [o for o in chosen if o is not None]
        channel["Color"] = [ome_color(o.display_color) for o in known]
        channel["IlluminationType"] = [
            "Epifluorescence" if o.fluorescence else "Transmitted" for o in known
        ]
        channel["ContrastMethod"] = [
            "Fluorescence" if o.fluorescence else "Brightfield" for o in known
        ]
        channel["AcquisitionMode"] = ["WideField"] * len(known)
        if all(o.wavelength_nm > 0 for o in known):
            channel["ExcitationWavelength"] = [o.wavelength_nm for o in known]
            channel["ExcitationWavelengthUnit"] = ["nm"] * len(known)
        if all(o.emission_nm > 0 or not o.fluorescence for o in known):
            # a transmitted channel is seen at the light's own wavelength
            channel["EmissionWavelength"] = [
                o.emission_nm if o.fluorescence else o.wavelength_nm for o in known
            ]
            channel["EmissionWavelengthUnit"] = ["nm"] * len(known)
    return channel


def write_field(
    folder: Path,
    frameset: FrameSet,
    *,
    optics: Mapping[Modality, ChannelOptics] | None = None,
    acquired_at: datetime | None = None,
    compression: str = "none",
) -> Path:
    """Write one field of view as `fov_NNNN.ome.tif` atomically; return its path.

    `optics` adds each channel's colour, wavelengths and illumination type to the OME metadata,
    `acquired_at` its AcquisitionDate; `compression` is one of COMPRESSIONS (lossless).
    """
    import tifffile

    if compression not in COMPRESSIONS:
        raise StorageError(
            f"compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}"
        )
    data = _check_frameset(frameset)
    path = field_path(Path(folder), frameset.fov)
    _make_folder(path.parent)
    channels = len(frameset.modalities)
    extras = {
        "format_version": FORMAT_VERSION,
        "sample_id": frameset.sample_id,
        "fov": frameset.fov,
        "modalities": [m.value for m in frameset.modalities],
        "timestamps_s": list(frameset.timestamps_s),
        "exposures_us": list(frameset.exposures_us),
        "lit": [m.value for m in frameset.lit],
        "shifts_px": [list(s) for s in frameset.shifts_px],
        "settings_digest": frameset.settings_digest,
    }
    # a UUID derived from the content's identity keeps files reproducible (same input, same bytes)
    identity = json.dumps(extras, sort_keys=True) + str(data.shape) + str(data.dtype)
    metadata = {
        "UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, "leukoscope:" + identity)),
        "axes": "CYX",
        "Name": f"{frameset.sample_id} fov {frameset.fov}",
        "Description": json.dumps(extras),
        "PhysicalSizeX": frameset.pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": frameset.pixel_size_um,
        "PhysicalSizeYUnit": "µm",
        "SignificantBits": frameset.bit_depth or data.dtype.itemsize * 8,
        "Channel": _channel_metadata(frameset, optics or {}),
        "Plane": {
            "ExposureTime": [float(e) for e in frameset.exposures_us],
            "ExposureTimeUnit": ["µs"] * channels,
        },
    }
    if acquired_at is not None:
        moment = acquired_at.astimezone(timezone.utc).replace(tzinfo=None)
        metadata["AcquisitionDate"] = moment.isoformat(timespec="seconds")
    pixels_per_cm = 1e4 / frameset.pixel_size_um
    with _atomic(path) as handle:
        tifffile.imwrite(
            handle,
            data,
            ome=True,
            photometric="minisblack",
            metadata=metadata,
            resolution=(pixels_per_cm, pixels_per_cm),
            resolutionunit="CENTIMETER",
            # zlib level 1 after horizontal differencing: most of the gain at a fraction of the time
            compression=None if compression == "none" else compression,
            compressionargs=None if compression == "none" else {"level": 1},
            predictor=None if compression == "none" else 2,
        )
    return path


ACQUISITION_FILES = re.compile(
    r"^(acquisition\.json|failed_fields\.json|ground_truth\.json|fov_\d{4,}\.ome\.tif"
    r"|\..+\.\d+\.tmp)$"
)
"""Names an acquisition folder holds: what `--replace` may delete (nothing else)."""


def prepare_sample_folder(folder: Path, *, replace: bool = False) -> Path:
    """Make `folder` ready for a new acquisition: absent or empty, or cleared when `replace`.

    An existing non-empty folder is refused (its fields would mix with the new sample's) unless
    `replace`; then its acquisition files are deleted first. A folder holding anything else is
    never cleared. StorageError says which and why.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise StorageError(f"{folder}: exists and is not a folder")
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as exc:
        raise StorageError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    if entries and not replace:
        raise StorageError(
            f"{folder} is not empty ({len(entries)} entries): a new acquisition would mix with "
            "what is there; pass --replace to clear it, or choose another sample id or --out"
        )
    foreign = [p.name for p in entries if p.is_dir() or not ACQUISITION_FILES.match(p.name)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise StorageError(
            f"{folder}: holds files that are not an acquisition's ({shown}); "
            "--replace clears only acquisitions: remove them yourself"
        )
    try:
        for path in sorted(entries, key=lambda p: p.name == META_FILE):  # metadata last
            path.unlink()
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{folder}: cannot prepare the folder ({exc.strerror or exc})") from None
    return folder


def failed_field_count(folder: Path) -> int:
    """How many fields `failed_fields.json` records as failed (0 when absent or unreadable)."""
    try:
        data = json.loads((Path(folder) / "failed_fields.json").read_text(encoding="utf-8"))
        return len(data["failed"]) if isinstance(data.get("failed"), list) else 0
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return 0


def list_fields(folder: Path) -> list[int]:
    """Indices of the fields saved in `folder`, sorted (temporary files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StorageError(f"{folder}: no such acquisition folder")
    found = (_FIELD_RE.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


_BAD_METADATA = (ValueError, KeyError, TypeError, AttributeError, RecursionError, SyntaxError)
"""What parsing a damaged OME-XML or JSON description raises (xml ParseError is a SyntaxError)."""


def _ome_channel_names(ome_xml: str | None) -> list[str]:
    import tifffile

    if not ome_xml:
        return []
    pixels = tifffile.xml2dict(ome_xml)["OME"]["Image"]["Pixels"]
    channels = pixels.get("Channel", [])
    if isinstance(channels, dict):
        channels = [channels]
    return [str(c.get("Name", "")) for c in channels]


def _ome_description(ome_xml: str | None) -> dict[str, Any]:
    import tifffile

    image = tifffile.xml2dict(ome_xml or "<OME/>").get("OME", {}).get("Image", {})
    text = image.get("Description", "") if isinstance(image, dict) else ""
    extras = json.loads(text) if text else {}
    if not isinstance(extras, dict):
        raise ValueError("description is not a JSON object")
    return extras


def _read_pixels(
    path: Path, names: list[str], shape: tuple[int, ...], dtype: np.dtype[Any]
) -> tuple[np.ndarray, str | None]:
    """The pixels of an OME-TIFF whose header announces channels `names`, `shape` and `dtype`.

    The header is checked before anything is decoded: a small compressed file can announce
    gigabytes of pixels (a decompression bomb); it is refused without allocating them.
    """
    import tifffile

    size = path.stat().st_size
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            offsets = getattr(page, "dataoffsets", ())
            counts = getattr(page, "databytecounts", ())
            if any(o + c > size for o, c in zip(offsets, counts, strict=False)):
                raise StorageError(f"{path}: truncated TIFF (image data runs past the end of file)")
        ome = tif.ome_metadata
        if not ome:
            raise StorageError(f"{path}: no OME-XML metadata (truncated, or not an OME-TIFF)")
        if not tif.series:
            raise StorageError(f"{path}: TIFF holds no image")
        try:
            have = _ome_channel_names(ome)
        except _BAD_METADATA as exc:
            raise StorageError(f"{path}: malformed OME metadata ({exc})") from None
        if have != names:
            raise StorageError(f"{path}: channel names {have} do not match the modalities {names}")
        series = tif.series[0]
        if tuple(series.shape) != shape:
            raise StorageError(
                f"{path}: image shape {tuple(series.shape)}, expected {shape} (C, Y, X)"
            )
        if series.dtype != dtype:
            raise StorageError(f"{path}: pixel type {series.dtype}, expected {dtype}")
        return series.asarray(), ome


def read_field(folder: Path, fov: int) -> FrameSet:
    """Read and validate field `fov` against `acquisition.json`; StorageError on any mismatch."""

    folder = Path(folder)
    meta = read_acquisition_meta(folder)
    path = field_path(folder, fov)
    if not path.is_file():
        raise StorageError(f"{path}: missing field of view {fov}")
    want_shape = (len(meta.modalities), *meta.frame_shape)
    expected = [m.value for m in meta.modalities]
    try:
        data, ome = _read_pixels(path, expected, want_shape, meta.dtype)
    except StorageError:
        raise
    except Exception as exc:  # untrusted bytes: tifffile raises many types (struct.error...)
        raise StorageError(
            f"{path}: unreadable or truncated TIFF ({type(exc).__name__}: {exc})"
        ) from None
    try:
        extras = _ome_description(ome)
    except _BAD_METADATA as exc:
        raise StorageError(f"{path}: malformed OME metadata ({exc})") from None
    if data.shape != want_shape:
        raise StorageError(f"{path}: image shape {data.shape}, expected {want_shape} (C, Y, X)")
    if data.dtype != meta.dtype:
        raise StorageError(f"{path}: pixel type {data.dtype}, expected {meta.dtype}")
    return _frameset(path, meta, fov, data, extras)


def _frameset(
    path: Path, meta: AcquisitionMeta, fov: int, data: np.ndarray, extras: dict[str, Any]
) -> FrameSet:
    n = len(meta.modalities)
    try:
        timestamps = tuple(float(t) for t in extras.get("timestamps_s", [0.0] * n))
        exposures = tuple(
            float(e) for e in extras.get("exposures_us", [c.exposure_us for c in meta.channels])
        )
        lit = tuple(Modality(m) for m in extras.get("lit", [m.value for m in meta.modalities]))
        shifts = tuple(
            (float(s[0]), float(s[1])) for s in extras.get("shifts_px", [(0.0, 0.0)] * n)
        )
    except (TypeError, ValueError, IndexError) as exc:
        raise StorageError(f"{path}: malformed field metadata ({exc})") from None
    if not len(timestamps) == len(exposures) == len(lit) == len(shifts) == n:
        raise StorageError(f"{path}: field metadata lists do not have {n} entries")
    if extras.get("fov", fov) != fov:
        raise StorageError(f"{path}: file says field {extras.get('fov')}, its name says {fov}")
    return FrameSet(
        sample_id=meta.sample_id,
        fov=fov,
        modalities=tuple(meta.modalities),
        frames=tuple(np.ascontiguousarray(data[i]) for i in range(n)),
        timestamps_s=timestamps,
        exposures_us=exposures,
        lit=lit,
        shifts_px=shifts,
        settings_digest=str(extras.get("settings_digest", meta.settings_digest)),
        pixel_size_um=meta.pixel_size_um,
        bit_depth=meta.bit_depth,
    )
