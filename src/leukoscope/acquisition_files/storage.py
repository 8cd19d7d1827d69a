"""Saved acquisitions: a folder per sample with `acquisition.json` and one image per field of view.

Layout::

    <folder>/acquisition.json     AcquisitionMeta (pydantic): sample, modalities, pixel size, bit depth,
                                  frame shape, per-channel exposure and light drive, rig digest, and
                                  the fields' format (`field_format`: ome-tiff, the default, or ome-zarr)
    <folder>/fov_0000.ome.tif     ome-tiff: C x Y x X (one channel per modality, channel names =
                                  modality names, colours, wavelengths, PhysicalSizeX/Y in um,
                                  per-plane ExposureTime); the OME Image Description holds the field's
                                  JSON extras (timestamps, lit lights, registration shifts), so a
                                  field reads back as the FrameSet it was (`ome_tiff.py`)
    <folder>/fov_0000.ome.zarr/   ome-zarr: the same image and metadata as an NGFF 0.4 image
                                  (`ome_zarr.py`)

Every field also says whether it is simulated, in its own metadata (OME-TIFF: a MapAnnotation of the
Image, namespace `leukoscope`, key `simulated`; OME-Zarr: `leukoscope.simulated` in `.zattrs`), true
or false. `read_acquisition_meta` compares those marks with `acquisition.json` and refuses the whole
sample when one disagrees, so removing the key from `acquisition.json` does not make a simulated
sample a patient's. Fields without a mark (written before fields were marked) follow the json.

Every write is atomic (temporary file or folder in the same folder, fsync, rename): a crash leaves
either the old state or the new field, never a half-written field under the real name. The readers
validate everything and raise StorageError naming the file and the problem. The files open in Fiji,
napari and QuPath (OME-Zarr: napari with napari-ome-zarr).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.acquisition_files.acquisition_meta import (
    FIELD_FORMATS,
    FORMAT_VERSION,
    META_FILE,
    AcquisitionMeta,
    ChannelMeta,
    FieldFormat,
    write_acquisition_meta,
)
from leukoscope.acquisition_files.acquisition_meta import read_acquisition_meta as read_meta_file
from leukoscope.acquisition_files.channels import ChannelOptics, ome_color
from leukoscope.acquisition_files.ome_tiff import (
    channel_metadata,
    read_tiff,
    read_tiff_mark,
    simulated_annotation,
    write_tiff,
)
from leukoscope.acquisition_files.ome_zarr import read_zarr, read_zarr_mark, write_zarr
from leukoscope.atomic import atomic_write_bytes, make_folder
from leukoscope.errors import StorageError
from leukoscope.types import FrameSet, Modality

__all__ = [
    "ACQUISITION_FILES",
    "COMPRESSIONS",
    "FIELD_FORMATS",
    "FORMAT_VERSION",
    "META_FILE",
    "AcquisitionMeta",
    "ChannelMeta",
    "ChannelOptics",
    "FieldFormat",
    "atomic_write_bytes",
    "check_field_marks",
    "failed_field_count",
    "field_mark",
    "field_path",
    "list_fields",
    "ome_color",
    "prepare_sample_folder",
    "read_acquisition_meta",
    "read_field",
    "write_acquisition_meta",
    "write_field",
]

_SUFFIX: dict[str, str] = {"ome-tiff": ".ome.tif", "ome-zarr": ".ome.zarr"}
_FIELD_RE = re.compile(r"^fov_(\d{4,})\.ome\.(tif|zarr)$")
COMPRESSIONS = ("none", "zlib")
"""Lossless compressions a field can be written with (docs/performance.md has their cost)."""


def field_path(folder: Path, fov: int, field_format: str = "ome-tiff") -> Path:
    """Path of field `fov` saved as `field_format` (a file for ome-tiff, a folder for ome-zarr)."""
    return Path(folder) / f"fov_{fov:04d}{_SUFFIX[field_format]}"


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


def _extras(frameset: FrameSet) -> dict[str, Any]:
    """What a field records beside its pixels, so that it reads back as the FrameSet it was."""
    return {
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


def write_field(
    folder: Path,
    frameset: FrameSet,
    *,
    optics: Mapping[Modality, ChannelOptics] | None = None,
    acquired_at: datetime | None = None,
    compression: str = "none",
    field_format: str = "ome-tiff",
    simulated: bool = False,
) -> Path:
    """Write one field of view atomically as `fov_NNNN.ome.tif` (or `.ome.zarr`); return its path.

    `optics` adds each channel's colour, wavelengths and illumination type to the metadata,
    `acquired_at` its acquisition date; `compression` is one of COMPRESSIONS (lossless);
    `simulated` is the field's own mark (written either way; it must agree with acquisition.json).
    """
    if compression not in COMPRESSIONS:
        raise StorageError(
            f"compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}"
        )
    if field_format not in FIELD_FORMATS:
        raise StorageError(
            f"field format {field_format!r}: expected one of {', '.join(FIELD_FORMATS)}"
        )
    data = _check_frameset(frameset)
    path = field_path(Path(folder), frameset.fov, field_format)
    make_folder(path.parent)
    extras = _extras(frameset)
    bits = frameset.bit_depth or data.dtype.itemsize * 8
    acquired = None
    if acquired_at is not None:
        moment = acquired_at.astimezone(timezone.utc).replace(tzinfo=None)
        acquired = moment.isoformat(timespec="seconds")
    name = f"{frameset.sample_id} fov {frameset.fov}"
    if field_format == "ome-zarr":
        write_zarr(
            path,
            data,
            name=name,
            modalities=frameset.modalities,
            optics=optics or {},
            pixel_size_um=frameset.pixel_size_um,
            significant_bits=bits,
            acquired=acquired,
            extras=extras,
            compression=compression,
            simulated=simulated,
        )
        return path
    # a UUID derived from the content's identity keeps files reproducible (same input, same bytes)
    identity = json.dumps(extras, sort_keys=True) + str(data.shape) + str(data.dtype)
    identity += " simulated" if simulated else ""
    channels = len(frameset.modalities)
    metadata: dict[str, Any] = {
        "UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, "leukoscope:" + identity)),
        "axes": "CYX",
        "Name": name,
        "Description": json.dumps(extras),
        "PhysicalSizeX": frameset.pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": frameset.pixel_size_um,
        "PhysicalSizeYUnit": "µm",
        "SignificantBits": bits,
        "Channel": channel_metadata(frameset.modalities, optics or {}),
        "Plane": {
            "ExposureTime": [float(e) for e in frameset.exposures_us],
            "ExposureTimeUnit": ["µs"] * channels,
        },
        "MapAnnotation": simulated_annotation(simulated),
    }
    if acquired is not None:
        metadata["AcquisitionDate"] = acquired
    write_tiff(path, data, metadata, pixel_size_um=frameset.pixel_size_um, compression=compression)
    return path


ACQUISITION_FILES = re.compile(
    r"^(acquisition\.json|failed_fields\.json|ground_truth\.json|fov_\d{4,}\.ome\.(tif|zarr)"
    r"|\..+\.\d+\.(tmp|old))$"
)
"""Names an acquisition folder holds: what `--replace` may delete (nothing else)."""


def _ours(path: Path) -> bool:
    """An acquisition's own entry: its files, and the OME-Zarr fields' folders."""
    if not ACQUISITION_FILES.match(path.name):
        return False
    zarr_folder = path.name.endswith((".ome.zarr", ".tmp", ".old")) and not path.is_symlink()
    return zarr_folder or not path.is_dir()


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
    foreign = [p.name for p in entries if not _ours(p)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise StorageError(
            f"{folder}: holds files that are not an acquisition's ({shown}); "
            "--replace clears only acquisitions: remove them yourself"
        )
    try:
        for path in sorted(entries, key=lambda p: p.name == META_FILE):  # metadata last
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
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
    except (OSError, ValueError, AttributeError, KeyError, TypeError, RecursionError):
        return 0  # a deeply nested file too: never a traceback


def list_fields(folder: Path) -> list[int]:
    """Indices of the fields saved in `folder`, either format, sorted (temporary files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StorageError(f"{folder}: no such acquisition folder")
    found = (_FIELD_RE.match(p.name) for p in folder.iterdir())
    return sorted({int(m.group(1)) for m in found if m})


def field_mark(folder: Path, fov: int, field_format: str = "ome-tiff") -> bool | None:
    """Field `fov`'s own simulated mark, from its header alone (None: unmarked or unreadable)."""
    path = field_path(Path(folder), fov, field_format)
    if field_format == "ome-zarr":
        return read_zarr_mark(path) if path.is_dir() else None
    return read_tiff_mark(path) if path.is_file() else None


def _says(simulated: bool) -> str:
    return "simulated" if simulated else "real"


def check_field_marks(folder: Path, meta: AcquisitionMeta) -> None:
    """Refuse (StorageError, one line) an acquisition one of whose saved fields is marked otherwise
    than `acquisition.json` says (a json without the key says real); unmarked fields pass."""
    folder = Path(folder)
    for fov in list_fields(folder):
        mark = field_mark(folder, fov, meta.field_format)
        if mark is None or mark == meta.simulated:
            continue
        json_says = _says(meta.simulated)
        if "simulated" not in meta.model_fields_set:
            json_says += " (it has no simulated key)"
        raise StorageError(
            f"{folder}: field {fov} is marked {_says(mark)} but {META_FILE} says {json_says}: "
            "refused (a sample whose files disagree is never analysed)"
        )


def read_acquisition_meta(folder: Path) -> AcquisitionMeta:
    """`acquisition.json`, validated, once every saved field's own simulated mark agrees with it
    (`check_field_marks`): the door through which a saved acquisition is opened for analysis."""
    meta = read_meta_file(folder)
    check_field_marks(folder, meta)
    return meta


def read_field(folder: Path, fov: int) -> FrameSet:
    """Read and validate field `fov` against `acquisition.json`; StorageError on any mismatch."""
    folder = Path(folder)
    meta = read_meta_file(folder)
    path = field_path(folder, fov, meta.field_format)
    zarr = meta.field_format == "ome-zarr"
    if not (path.is_dir() if zarr else path.is_file()):
        raise StorageError(f"{path}: missing field of view {fov}")
    want_shape = (len(meta.modalities), *meta.frame_shape)
    expected = [m.value for m in meta.modalities]
    read = read_zarr if zarr else read_tiff
    data, extras = read(path, expected, want_shape, meta.dtype)
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
    if extras.get("sample_id", meta.sample_id) != meta.sample_id:  # a field of another sample
        raise StorageError(
            f"{path}: the field says it is of sample {str(extras.get('sample_id'))[:80]!r}, the "
            f"acquisition is of {meta.sample_id!r}: not analysed as part of it"
        )
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
