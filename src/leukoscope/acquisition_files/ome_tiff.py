"""One field of view as an OME-TIFF file: C x Y x X, channel names, colours and wavelengths in the
OME-XML, the field's JSON extras in the Image Description, whether it is simulated in a MapAnnotation
of the Image (namespace `leukoscope`, key `simulated`); the reader checks the header before it decodes
anything."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.acquisition_files.channels import ChannelOptics, ome_color
from leukoscope.atomic import atomic_file
from leukoscope.errors import StorageError
from leukoscope.types import Modality

BAD_METADATA = (ValueError, KeyError, TypeError, AttributeError, RecursionError, SyntaxError)
"""What parsing a damaged OME-XML or JSON description raises (xml ParseError is a SyntaxError)."""
MARK_NAMESPACE = "leukoscope"
"""Namespace of the Image's MapAnnotation that says whether the field is simulated."""
MARK_KEY = "simulated"
_MARK_VALUES = {"true": True, "false": False}


def simulated_annotation(simulated: bool) -> dict[str, Any]:
    """tifffile's OME `MapAnnotation` metadata that marks the Image simulated (or not)."""
    return {"Namespace": MARK_NAMESPACE, "Value": {MARK_KEY: "true" if simulated else "false"}}


def channel_metadata(
    modalities: tuple[Modality, ...], optics: Mapping[Modality, ChannelOptics]
) -> dict[str, list[Any]]:
    """tifffile's OME `Channel` metadata: names, and colour, illumination and wavelengths where
    every channel's light is known."""
    channel: dict[str, list[Any]] = {"Name": [m.value for m in modalities]}
    chosen = [optics.get(m) for m in modalities]
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
        if all(o.seen_nm > 0 for o in known):
            # a transmitted channel is seen at the light's own wavelength
            channel["EmissionWavelength"] = [o.seen_nm for o in known]
            channel["EmissionWavelengthUnit"] = ["nm"] * len(known)
    return channel


def write_tiff(
    path: Path,
    data: np.ndarray,
    metadata: dict[str, Any],
    *,
    pixel_size_um: float,
    compression: str,
) -> None:
    """Write `data` (C x Y x X) with OME `metadata` to `path` atomically."""
    import tifffile

    pixels_per_cm = 1e4 / pixel_size_um
    with atomic_file(path) as handle:
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


def _channel_names(ome_xml: str | None) -> list[str]:
    import tifffile

    if not ome_xml:
        return []
    pixels = tifffile.xml2dict(ome_xml)["OME"]["Image"]["Pixels"]
    channels = pixels.get("Channel", [])
    if isinstance(channels, dict):
        channels = [channels]
    return [str(c.get("Name", "")) for c in channels]


def _description(ome_xml: str | None) -> dict[str, Any]:
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
            have = _channel_names(ome)
        except BAD_METADATA as exc:
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


def read_tiff(
    path: Path, names: list[str], shape: tuple[int, ...], dtype: np.dtype[Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The pixels (C x Y x X) and JSON extras of an OME-TIFF field; StorageError on any mismatch."""
    try:
        data, ome = _read_pixels(path, names, shape, dtype)
    except StorageError:
        raise
    except Exception as exc:  # untrusted bytes: tifffile raises many types (struct.error...)
        raise StorageError(
            f"{path}: unreadable or truncated TIFF ({type(exc).__name__}: {exc})"
        ) from None
    try:
        return data, _description(ome)
    except BAD_METADATA as exc:
        raise StorageError(f"{path}: malformed OME metadata ({exc})") from None


def _marks(ome_xml: str) -> list[str]:
    """The values of every `simulated` key in the OME-XML's leukoscope MapAnnotations."""
    values = []
    for element in ET.fromstring(ome_xml).iter():
        tag = element.tag.rpartition("}")[2]
        if tag == "MapAnnotation" and element.get("Namespace") == MARK_NAMESPACE:
            values += [
                (m.text or "").strip()
                for m in element.iter()
                if m.tag.rpartition("}")[2] == "M" and m.get("K") == MARK_KEY
            ]
    return values


def read_tiff_mark(path: Path) -> bool | None:
    """Whether the OME-TIFF field `path` is marked simulated, read from its OME-XML header alone (no
    pixel is decoded). None: no mark (written before fields were marked), or a header too damaged to
    read (reading the field fails it). StorageError: a mark that is neither true nor false."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            ome = tif.ome_metadata
        values = _marks(ome) if ome else []
    except Exception:  # untrusted bytes: the field's own read reports what is wrong with them
        return None
    if not values:
        return None
    if len(set(values)) != 1 or values[0] not in _MARK_VALUES:
        raise StorageError(f"{path}: malformed simulated mark {values} (expected true or false)")
    return _MARK_VALUES[values[0]]
