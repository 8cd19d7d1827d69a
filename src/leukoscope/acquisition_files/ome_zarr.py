"""One field of view as an OME-Zarr (NGFF 0.4) image: a folder `fov_NNNN.ome.zarr` with one C x Y x X
array, written through zarr (format 2, `/`-separated chunk keys, as NGFF 0.4 and napari expect).

The group's attributes hold the NGFF `multiscales` (axes c, y, x; micrometre scale) and `omero`
(channel names = modality names, display colours, windows from the bit depth) metadata, and under
`leukoscope` what OME-Zarr has no place for: whether the field is simulated (`simulated`: true or
false), each channel's illumination and wavelengths, the significant bits, the acquisition date and
the field's JSON extras (timestamps, lit lights, shifts).

The reader checks every metadata file's size, the array's shape, type, chunking and codecs, and that
every chunk is present and decompresses to its size, before it lets zarr decode anything: a missing
chunk would otherwise read as zeros, and a small chunk can announce gigabytes (a decompression bomb).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.acquisition_files.channels import ChannelOptics
from leukoscope.atomic import atomic_folder
from leukoscope.errors import StorageError
from leukoscope.types import Modality

NGFF_VERSION = "0.4"
ARRAY = "0"  # the one resolution level
CHUNK_SIDE = 1024  # y/x chunk side: 2 MiB chunks of a 12-bit field, fetched independently remotely
MAX_METADATA_BYTES = 1 << 20
MAX_CHUNKS = 4096  # per field: tiny chunks would make reading a field a long walk over files
_CODECS = ("none", "zlib")


def zarr_module() -> Any:
    """The zarr package; StorageError (one line) where it cannot be imported."""
    try:
        import zarr
    except ImportError:  # Python 3.10 has no zarr 3
        raise StorageError(
            "the ome-zarr format needs the zarr package (zarr 3, Python 3.11 or newer); "
            "install it or save fields as ome-tiff"
        ) from None
    return zarr


def _channels(
    modalities: tuple[Modality, ...], optics: Mapping[Modality, ChannelOptics], top: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The `omero` channels (viewers) and the `leukoscope` channels (the OME-TIFF's optics)."""
    omero, ours = [], []
    for m in modalities:
        light = optics.get(m)
        colour = light.display_color[1:7].upper() if light else "FFFFFF"
        window = {"start": 0, "end": top, "min": 0, "max": top}
        omero.append(
            {
                "label": m.value,
                "color": colour,
                "window": window,
                "active": True,
                "coefficient": 1.0,
                "family": "linear",
                "inverted": False,
            }
        )
        entry: dict[str, Any] = {"name": m.value}
        if light is not None:
            entry.update(
                color=light.display_color,
                illumination="Epifluorescence" if light.fluorescence else "Transmitted",
                contrast_method="Fluorescence" if light.fluorescence else "Brightfield",
                excitation_wavelength_nm=light.wavelength_nm or None,
                emission_wavelength_nm=light.seen_nm or None,
            )
        ours.append(entry)
    return omero, ours


def write_zarr(
    path: Path,
    data: np.ndarray,
    *,
    name: str,
    modalities: tuple[Modality, ...],
    optics: Mapping[Modality, ChannelOptics],
    pixel_size_um: float,
    significant_bits: int,
    acquired: str | None,
    extras: dict[str, Any],
    compression: str,
    simulated: bool = False,
) -> None:
    """Write `data` (C x Y x X) as the OME-Zarr image `path`, atomically (a folder renamed);
    `simulated` is its mark (`leukoscope.simulated`, written true or false)."""
    zarr = zarr_module()
    import numcodecs

    omero, ours = _channels(modalities, optics, (1 << significant_bits) - 1)
    attrs = {
        "multiscales": [
            {
                "version": NGFF_VERSION,
                "name": name,
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
                "datasets": [
                    {
                        "path": ARRAY,
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [1.0, pixel_size_um, pixel_size_um]}
                        ],
                    }
                ],
            }
        ],
        "omero": {
            "version": NGFF_VERSION,
            "name": name,
            "channels": omero,
            "rdefs": {"model": "color", "defaultZ": 0, "defaultT": 0},
        },
        "leukoscope": {
            "simulated": simulated,
            "channels": ours,
            "significant_bits": significant_bits,
            "acquisition_date": acquired,
            "field": extras,
        },
    }
    packed = compression != "none"
    with atomic_folder(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        array = group.create_array(
            ARRAY,
            shape=data.shape,
            chunks=(1, min(CHUNK_SIDE, data.shape[1]), min(CHUNK_SIDE, data.shape[2])),
            dtype=data.dtype,
            # zlib level 1 after differencing, as the OME-TIFF's predictor 2
            compressors=numcodecs.Zlib(level=1) if packed else None,
            filters=[numcodecs.Delta(dtype=data.dtype.str)] if packed else None,
            chunk_key_encoding={"name": "v2", "separator": "/"},
            fill_value=0,
        )
        array[...] = data
        group.attrs.update(attrs)


def _json(path: Path) -> dict[str, Any]:
    """A small JSON object file, size checked before it is parsed."""
    if not path.is_file():
        raise StorageError(f"{path}: missing (not an OME-Zarr image, or written partly)")
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise StorageError(f"{path}: metadata over {MAX_METADATA_BYTES} bytes")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise StorageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise StorageError(f"{path}: not a JSON object")
    return data


def _dtype_names(dtype: np.dtype[Any]) -> frozenset[str]:
    """How `.zarray` may name `dtype`: little-endian, and without byte order for one byte."""
    little = dtype.newbyteorder("<").str
    return frozenset(
        {little, "|" + little[1:], "<" + little[1:]} if dtype.itemsize == 1 else {little}
    )


def _check_array(
    path: Path, spec: dict[str, Any], shape: tuple[int, ...], dtype: np.dtype[Any]
) -> tuple[tuple[int, ...], bool]:
    """The chunk shape and whether chunks are zlib-compressed, once `.zarray` is what we write."""
    if spec.get("zarr_format") != 2 or spec.get("order") != "C":
        raise StorageError(f"{path}: not a zarr format 2, C-order array")
    if tuple(spec.get("shape", ())) != shape:
        raise StorageError(
            f"{path}: image shape {spec.get('shape')}, expected {list(shape)} (C, Y, X)"
        )
    if spec.get("dtype") not in _dtype_names(dtype):
        raise StorageError(f"{path}: pixel type {spec.get('dtype')!r}, expected {dtype}")
    chunks = tuple(spec.get("chunks", ()))
    if len(chunks) != 3 or not all(
        isinstance(c, int) and 1 <= c <= s for c, s in zip(chunks, shape, strict=False)
    ):
        raise StorageError(
            f"{path}: chunks {spec.get('chunks')} do not fit the shape {list(shape)}"
        )
    compressor, filters = spec.get("compressor"), spec.get("filters")
    zlib_packed = compressor is not None
    if zlib_packed and not (isinstance(compressor, dict) and compressor.get("id") == "zlib"):
        raise StorageError(f"{path}: compressor {compressor} (leukoscope reads none or zlib)")
    delta = [{"id": "delta", "dtype": spec["dtype"], "astype": spec["dtype"]}]
    if filters not in (None, delta):
        raise StorageError(f"{path}: filters {filters} (leukoscope reads none or delta)")
    if spec.get("dimension_separator") != "/":
        raise StorageError(f"{path}: chunk keys must be '/'-separated (NGFF 0.4)")
    return chunks, zlib_packed


def _check_chunks(
    folder: Path, shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, zlib_packed: bool
) -> None:
    """Every chunk is there and holds exactly its size (a zlib chunk inflates to no more)."""
    size = math.prod(chunks) * itemsize
    counts = [range(math.ceil(s / c)) for s, c in zip(shape, chunks, strict=True)]
    if math.prod(len(c) for c in counts) > MAX_CHUNKS:
        raise StorageError(
            f"{folder}: chunks {list(chunks)} split the field into over {MAX_CHUNKS}"
        )
    for index in product(*counts):
        chunk = folder.joinpath(*(str(i) for i in index))
        if not chunk.is_file():
            raise StorageError(f"{chunk}: chunk missing (the field is incomplete)")
        if not zlib_packed:
            if chunk.stat().st_size != size:
                raise StorageError(f"{chunk}: {chunk.stat().st_size} bytes, expected {size}")
            continue
        if chunk.stat().st_size > size + size // 100 + 1024:  # more than zlib ever adds
            raise StorageError(f"{chunk}: {chunk.stat().st_size} bytes for a {size}-byte chunk")
        raw = chunk.read_bytes()
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(raw, size + 1)
        except zlib.error as exc:
            raise StorageError(f"{chunk}: corrupt zlib chunk ({exc})") from None
        if len(out) != size or inflater.unconsumed_tail or not inflater.eof:
            raise StorageError(f"{chunk}: chunk does not inflate to its {size} bytes")


def read_zarr(
    path: Path, names: list[str], shape: tuple[int, ...], dtype: np.dtype[Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The pixels (C x Y x X) and JSON extras of an OME-Zarr field; StorageError on any mismatch."""
    attrs = _json(path / ".zattrs")
    _json(path / ".zgroup")
    try:
        datasets = attrs["multiscales"][0]["datasets"]
        have = [str(c["label"]) for c in attrs["omero"]["channels"]]
        extras = attrs.get("leukoscope", {}).get("field", {})
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise StorageError(
            f"{path}: malformed OME-Zarr metadata ({type(exc).__name__}: {exc})"
        ) from None
    if [d.get("path") if isinstance(d, dict) else None for d in datasets] != [ARRAY]:
        raise StorageError(f"{path}: expected one resolution level named {ARRAY!r}")
    if have != names:
        raise StorageError(f"{path}: channel names {have} do not match the modalities {names}")
    if not isinstance(extras, dict):
        raise StorageError(f"{path}: malformed field metadata (not a JSON object)")
    chunks, zlib_packed = _check_array(path, _json(path / ARRAY / ".zarray"), shape, dtype)
    _check_chunks(path / ARRAY, shape, chunks, dtype.itemsize, zlib_packed)
    zarr = zarr_module()
    try:
        data = np.asarray(zarr.open_array(str(path / ARRAY), mode="r", zarr_format=2)[...])
    except Exception as exc:  # untrusted files: zarr and numcodecs raise many types
        raise StorageError(f"{path}: unreadable OME-Zarr ({type(exc).__name__}: {exc})") from None
    return data.astype(dtype, copy=False), extras


def read_zarr_mark(path: Path) -> bool | None:
    """Whether the OME-Zarr field `path` is marked simulated, read from its `.zattrs` alone (no chunk
    is read). None: no mark (written before fields were marked), or attributes too damaged to read
    (reading the field fails it). StorageError: a mark that is neither true nor false."""
    try:
        ours = _json(path / ".zattrs").get("leukoscope")
    except StorageError:
        return None
    if not isinstance(ours, dict) or "simulated" not in ours:
        return None
    mark = ours["simulated"]
    if not isinstance(mark, bool):
        raise StorageError(f"{path}: malformed simulated mark {mark!r} (expected true or false)")
    return mark
