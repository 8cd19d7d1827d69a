"""The table of message kinds: for each, its header schema and how it maps to and from a message.

Header fields are copied by name (`fields.fill` / `fields.take`), so adding a field to a message
is one edit: declare it in the header model below (with its bounds) and on the Python object. The
arrays a kind carries, and the checks that span header and arrays, are in the kind's two functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from leukoscope import limits
from leukoscope.errors import WireError
from leukoscope.ids import SampleId
from leukoscope.pipeline.wire import messages as m
from leukoscope.pipeline.wire.bounds import (
    MAX_CELLS_PER_FIELD,
    MAX_DIM,
    BitDepth,
    Coord,
    Count,
    Exposure,
    Fov,
    Name,
    PixelSize,
    Shift,
    Strict,
    Text,
    Ticket,
    Time,
)
from leukoscope.pipeline.wire.fields import fill, take
from leukoscope.types import (
    CELL_CLASSES,
    MODALITIES,
    CellClass,
    CellCrop,
    CellKey,
    CellResult,
    FrameSet,
    Modality,
)

Arrays = list[tuple[str, np.ndarray]]

# --- header schemas of the kinds with arrays --------------------------------------------------


class FrameSetHeader(Strict):
    kind: Literal["frameset"] = "frameset"
    sample_id: SampleId
    fov: Fov
    modalities: tuple[Modality, ...] = Field(min_length=1, max_length=len(MODALITIES))
    timestamps_s: tuple[Time, ...]
    exposures_us: tuple[Exposure, ...]
    lit: tuple[Modality, ...]
    shifts_px: tuple[tuple[Shift, Shift], ...]
    settings_digest: Name = ""
    pixel_size_um: PixelSize
    bit_depth: BitDepth = 0
    t_available_s: Time = 0.0
    ticket: Ticket = ""


ThumbnailBytes = Annotated[int, Field(ge=0, le=MAX_DIM)]  # one cell's PNG (a padded uint8 row)


class CellMeta(Strict):
    cell_index: Count
    bbox: tuple[Coord, Coord, Coord, Coord]
    area_px: Time = 0.0
    fluorescence_mean: Time = 0.0


class CellsHeader(Strict):
    kind: Literal["cells"] = "cells"
    sample_id: SampleId
    fov: Fov
    cell_count: Count
    modalities: tuple[Modality, ...] = Field(min_length=1, max_length=len(MODALITIES))
    worker: Name = ""
    t_available_s: Time = 0.0
    ticket: Ticket = ""
    cells: tuple[CellMeta, ...] = Field(default=(), max_length=MAX_CELLS_PER_FIELD)
    thumbnail_bytes: tuple[ThumbnailBytes, ...] = Field(default=(), max_length=MAX_CELLS_PER_FIELD)
    focus: Annotated[float, Field(ge=0.0, le=16.0, allow_inf_nan=False)] | None = None
    quality_notes: tuple[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")], ...] = Field(
        default=(), max_length=8
    )


class ResultMeta(Strict):
    sample_id: SampleId
    fov: Fov
    cell_index: Count
    cell_class: CellClass
    disagreement: Time = 0.0
    flagged: bool = False
    flag_reason: Text = ""
    bbox: tuple[Coord, Coord, Coord, Coord] = (0, 0, 0, 0)


class ResultHeader(Strict):
    kind: Literal["result"] = "result"
    worker: Name = ""
    extra: dict[Name, Text] = Field(default_factory=dict, max_length=64)
    tickets: tuple[tuple[SampleId, Fov, Ticket], ...] = Field(
        default=(), max_length=MAX_CELLS_PER_FIELD
    )
    results: tuple[ResultMeta, ...] = Field(default=(), max_length=MAX_CELLS_PER_FIELD)


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One message kind: header schema, message class, and the two directions of the mapping."""

    name: str
    header: type[Strict]
    message: type
    to_wire: Callable[[Any], tuple[dict[str, Any], Arrays]]  # message -> (header data, arrays)
    from_wire: Callable[[Any, dict[str, np.ndarray]], Any]  # valid header, arrays -> message


def expect(kind: str, arrays: dict[str, np.ndarray], names: Sequence[str]) -> None:
    """The message carries exactly the arrays `names`, in that order."""
    if list(arrays) != list(names):
        raise WireError(f"{kind}: expected arrays {list(names)}, got {list(arrays)}")


def _stack(arrays: Sequence[np.ndarray], what: str) -> np.ndarray:
    first = arrays[0]
    for array in arrays[1:]:
        if array.shape != first.shape or array.dtype != first.dtype:
            raise WireError(
                f"{what}: every item must have the same shape and dtype "
                f"({first.shape} {first.dtype} vs {array.shape} {array.dtype})"
            )
    return np.stack(arrays)


def _frameset_to_wire(message: m.FrameSetMessage) -> tuple[dict[str, Any], Arrays]:
    fs = message.frameset
    if len(fs.frames) != len(fs.modalities):
        raise WireError(f"frameset: {len(fs.frames)} frames for {len(fs.modalities)} modalities")
    arrays = [(mod.value, f) for mod, f in zip(fs.modalities, fs.frames, strict=True)]
    return fill(FrameSetHeader, message, fs), arrays


def _frameset_from_wire(h: Any, arrays: dict[str, np.ndarray]) -> m.FrameSetMessage:
    n = len(h.modalities)
    if len(set(h.modalities)) != n:
        raise WireError(f"frameset: duplicate modalities {[mod.value for mod in h.modalities]}")
    for name in ("timestamps_s", "exposures_us", "lit", "shifts_px"):
        if len(getattr(h, name)) != n:
            raise WireError(f"frameset: {name} has {len(getattr(h, name))} items, expected {n}")
    expect("frameset", arrays, [mod.value for mod in h.modalities])
    for name, frame in arrays.items():
        if frame.ndim not in (2, 3):
            raise WireError(f"frameset: frame {name!r} has {frame.ndim} dimensions (2 or 3)")
        if max(frame.shape[:2]) > limits.MAX_FRAME_SIDE:
            raise WireError(
                f"frameset: frame {name!r} is {list(frame.shape)}; sides are at most "
                f"{limits.MAX_FRAME_SIDE} px"
            )
    frameset = take(FrameSet, h, frames=tuple(arrays.values()))
    return take(m.FrameSetMessage, h, frameset=frameset)


def _cells_to_wire(batch: m.CellBatch) -> tuple[dict[str, Any], Arrays]:
    for cell in batch.cells:
        if (cell.key.sample_id, cell.key.fov) != (batch.sample_id, batch.fov):
            raise WireError(f"cells: {cell.key} is not in field {batch.sample_id}/{batch.fov}")
    metas = [fill(CellMeta, cell, cell.key) for cell in batch.cells]
    arrays = [("crops", _stack([c.crops for c in batch.cells], "crops"))] if batch.cells else []
    sizes = [len(png) for png in batch.thumbnails]
    if batch.thumbnails:
        if len(sizes) != len(batch.cells) or max(sizes) > MAX_DIM:
            raise WireError(
                f"cells: {len(sizes)} thumbnails for {len(batch.cells)} cells, or one over {MAX_DIM} bytes"
            )
        padded = np.zeros((len(sizes), max(sizes)), np.uint8)
        for row, png in zip(padded, batch.thumbnails, strict=True):
            row[: len(png)] = np.frombuffer(png, np.uint8)
        arrays.append(("thumbnails", padded))
    return fill(CellsHeader, batch, cells=metas, thumbnail_bytes=sizes), arrays


def _cells_from_wire(h: Any, arrays: dict[str, np.ndarray]) -> m.CellBatch:
    n = len(h.cells)
    indices = [c.cell_index for c in h.cells]
    if len(set(indices)) != n:
        raise WireError("cells: duplicate cell_index")
    if any(i >= h.cell_count for i in indices):
        raise WireError(f"cells: a cell_index is >= the field's cell_count {h.cell_count}")
    if len(set(h.modalities)) != len(h.modalities):
        raise WireError("cells: duplicate modalities")
    sizes = h.thumbnail_bytes
    if sizes and len(sizes) != n:
        raise WireError(f"cells: {len(sizes)} thumbnail sizes for {n} cells")
    expect("cells", arrays, (["crops", "thumbnails"] if sizes else ["crops"]) if n else [])
    pictures = arrays.get("thumbnails")
    if pictures is not None and (
        pictures.ndim != 2
        or pictures.shape[0] != n
        or pictures.shape[1] < max(sizes)
        or pictures.dtype != np.uint8
    ):
        raise WireError(
            f"cells: thumbnails {pictures.dtype}{list(pictures.shape)} should be uint8[{n}, >= {max(sizes)}]"
        )
    thumbnails = (
        ()
        if pictures is None
        else tuple(bytes(row[:k]) for row, k in zip(pictures, sizes, strict=True))
    )
    crops = arrays.get("crops")
    if crops is not None and (
        crops.ndim not in (4, 5) or crops.shape[0] != n or crops.shape[1] != len(h.modalities)
    ):
        raise WireError(
            f"cells: crops shape {list(crops.shape)} should be [{n}, {len(h.modalities)}, H, W(, C)]"
        )
    cells = tuple(
        take(CellCrop, meta, key=take(CellKey, meta, h), crops=crops[i])  # type: ignore[index]
        for i, meta in enumerate(h.cells)
    )
    return take(m.CellBatch, h, cells=cells, thumbnails=thumbnails)


def _results_to_wire(batch: m.ResultBatch) -> tuple[dict[str, Any], Arrays]:
    widths = {len(r.probabilities) for r in batch.results}  # the model's classes
    if len(widths) > 1:
        raise WireError(f"result: every result must have the same number of classes, got {widths}")
    n, k = len(batch.results), widths.pop() if widths else len(CELL_CLASSES)
    if not len(CELL_CLASSES) <= k <= len(CellClass):  # the five, then the classes a lab adds
        raise WireError(f"result: cannot encode {k} class probabilities per cell")
    heads = {len(r.head_probabilities) for r in batch.results}
    if len(heads) > 1:
        raise WireError(f"result: every result must have the same number of heads, got {heads}")
    n_heads = heads.pop() if heads else 0
    probabilities = np.asarray([r.probabilities for r in batch.results], dtype=np.float64)
    head_probabilities = np.asarray(
        [r.head_probabilities for r in batch.results], dtype=np.float64
    ).reshape(n, n_heads, k)
    metas = [fill(ResultMeta, r, r.key) for r in batch.results]
    arrays = [
        ("probabilities", probabilities.reshape(n, k)),
        ("head_probabilities", head_probabilities),
    ]
    return fill(ResultHeader, batch, results=metas), arrays


def _results_from_wire(h: Any, arrays: dict[str, np.ndarray]) -> m.ResultBatch:
    expect("result", arrays, ["probabilities", "head_probabilities"])
    probabilities, heads = arrays["probabilities"], arrays["head_probabilities"]
    k = probabilities.shape[1] if probabilities.ndim == 2 else len(CELL_CLASSES)
    k = k if len(CELL_CLASSES) <= k <= len(CellClass) else len(CELL_CLASSES)  # the five, + a lab's
    n = len(h.results)
    if probabilities.shape != (n, k) or heads.ndim != 3 or heads.shape[::2] != (n, k):
        raise WireError(
            f"result: probabilities {list(probabilities.shape)} / head_probabilities "
            f"{list(heads.shape)} do not fit {n} results x {k} classes"
        )
    if probabilities.dtype != np.float64 or heads.dtype != np.float64:
        raise WireError("result: probabilities must be float64")
    if not (np.isfinite(probabilities).all() and np.isfinite(heads).all()):
        raise WireError("result: probabilities must be finite")
    keys = [(r.sample_id, r.fov, r.cell_index) for r in h.results]
    if len(set(keys)) != n:
        raise WireError("result: duplicate cell keys in one batch")
    results = tuple(
        take(
            CellResult,
            meta,
            key=take(CellKey, meta),
            probabilities=tuple(probabilities[i].tolist()),
            head_probabilities=tuple(tuple(row) for row in heads[i].tolist()),
        )
        for i, meta in enumerate(h.results)
    )
    return take(m.ResultBatch, h, results=results, extra=dict(h.extra))


def _model_to_wire(message: Strict) -> tuple[dict[str, Any], Arrays]:
    return message.model_dump(mode="json"), []


def _model_from_wire(h: Any, arrays: dict[str, np.ndarray]) -> Strict:
    expect(h.kind, arrays, [])
    model = KINDS[h.kind].header
    values = {name: getattr(h, name) for name in model.model_fields}
    return model.model_construct(**values)  # already validated as the envelope


def _model_kind(model: type[Strict]) -> Kind:
    name = model.model_fields["kind"].default
    return Kind(name, model, model, _model_to_wire, _model_from_wire)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("frameset", FrameSetHeader, m.FrameSetMessage, _frameset_to_wire, _frameset_from_wire),
        Kind("cells", CellsHeader, m.CellBatch, _cells_to_wire, _cells_from_wire),
        Kind("result", ResultHeader, m.ResultBatch, _results_to_wire, _results_from_wire),
        _model_kind(m.FieldDone),
        _model_kind(m.FieldFailed),
        _model_kind(m.SampleStart),
        _model_kind(m.SampleEnd),
        _model_kind(m.Hello),
        _model_kind(m.Heartbeat),
        _model_kind(m.Ready),
        _model_kind(m.SummaryMessage),
    )
}
"""Every message kind, by its `kind` header value."""
KIND_OF_CLASS: dict[type, Kind] = {kind.message: kind for kind in KINDS.values()}
