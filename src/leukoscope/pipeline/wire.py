"""The pipeline's multipart message codec: a versioned JSON header plus raw array buffers.

Frame 0 is a UTF-8 JSON object ``{"v": 1, "kind": ..., ...metadata, "arrays": [{"name", "dtype",
"shape"}]}``; frames 1..n are the raw C-contiguous little-endian buffers of those arrays, in order.
Decoding validates everything (header schema with pydantic in strict mode, the dtype whitelist, shape
and size bounds, each buffer's length against dtype x shape) *before* any array is built, and raises
`WireError` for every malformed input. Arrays are built with `np.frombuffer` (no copy): they are
read-only views of the received frames. No pickle, ever. The schema of each kind is in docs/pipeline.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeAlias

import numpy as np
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError, create_model

from leukoscope import limits
from leukoscope.errors import WireError
from leukoscope.ids import SampleId
from leukoscope.types import (
    CELL_CLASSES,
    MODALITIES,
    CellClass,
    CellCrop,
    CellKey,
    CellResult,
    FrameSet,
    Modality,
    SampleSummary,
)

PROTOCOL_VERSION = 1
ALLOWED_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(name).newbyteorder("<")
    for name in ("uint8", "uint16", "int32", "int64", "float32", "float64")
}
"""Array dtypes allowed on the wire (always little-endian)."""
MAX_NDIM = 5
MAX_DIM = 65536
MAX_ARRAYS = 16
MAX_FRAMES = 1 + MAX_ARRAYS
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_HEADER_BYTES = 4 * 1024 * 1024
MAX_FRAME_BYTES = DEFAULT_MAX_BYTES
"""Largest single frame a socket accepts (zmq.MAXMSGSIZE): a peer sending more is disconnected."""
MAX_CELLS_PER_FIELD = 1_000_000

KINDS = (
    "frameset",
    "cells",
    "result",
    "field_done",
    "field_failed",
    "sample_start",
    "sample_end",
    "hello",
    "heartbeat",
    "ready",
    "summary",
)


@dataclass(frozen=True)
class WireLimits:
    """Bounds a decoder enforces before it builds anything."""

    max_bytes: int = DEFAULT_MAX_BYTES  # total bytes of all array buffers in one message
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES


DEFAULT_LIMITS = WireLimits()

Fov = Annotated[int, Field(ge=0, le=10_000_000)]
Count = Annotated[int, Field(ge=0, le=MAX_CELLS_PER_FIELD)]
Text = Annotated[str, Field(max_length=4096)]
Name = Annotated[str, Field(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")]
Coord = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Time = FiniteFloat
PixelSize = Annotated[
    float, Field(ge=limits.MIN_PIXEL_SIZE_UM, le=limits.MAX_PIXEL_SIZE_UM, allow_inf_nan=False)
]
Exposure = Annotated[float, Field(ge=0.0, le=limits.MAX_EXPOSURE_US, allow_inf_nan=False)]
Shift = Annotated[
    float, Field(ge=-limits.MAX_FRAME_SIDE, le=limits.MAX_FRAME_SIDE, allow_inf_nan=False)
]
Ticket = Annotated[str, Field(max_length=64, pattern=r"^[0-9a-f]*$")]
"""The aggregator's unguessable id of one dispatch of one unit; an answer echoes it (or is dropped)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ArraySpec(_Strict):
    """One array buffer announced in a header."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    dtype: Literal["uint8", "uint16", "int32", "int64", "float32", "float64"]
    shape: tuple[Annotated[int, Field(ge=0, le=MAX_DIM)], ...] = Field(max_length=MAX_NDIM)


# --- messages without arrays: the pydantic model is the message --------------------------------


class SampleStart(_Strict):
    """A sample begins; `fields_total` is known up front for saved acquisitions."""

    kind: Literal["sample_start"] = "sample_start"
    sample_id: SampleId
    fields_total: Count | None = None
    run_id: Name = ""
    settings_digest: Name = ""
    pixel_size_um: PixelSize | None = None
    started_s: Time = 0.0
    acquisition: Text = ""  # saved-acquisition folder: where lost fields can be re-read
    simulated: bool = False  # the fields come from the simulator (marked in every output)


class SampleEnd(_Strict):
    """No more fields of view will come for this sample: it had `fields_total` of them."""

    kind: Literal["sample_end"] = "sample_end"
    sample_id: SampleId
    fields_total: Count
    reason: Text = ""  # why acquisition ended early, if it did


class FieldDone(_Strict):
    """Segmentation finished a field of view: it produced `cell_count` cells (zero is reported)."""

    kind: Literal["field_done"] = "field_done"
    sample_id: SampleId
    fov: Fov
    cell_count: Count
    worker: Name = ""
    t_available_s: Time = 0.0  # when the field became available (source clock)
    elapsed_s: Time = 0.0  # segmentation time


class FieldFailed(_Strict):
    """A field of view could not be analysed (corrupt file, decode error...): it is skipped."""

    kind: Literal["field_failed"] = "field_failed"
    sample_id: SampleId
    fov: Fov
    reason: Text
    stage: Name = ""
    worker: Name = ""
    ticket: Ticket = ""  # from a worker: the ticket of the work it was handed


Role = Literal["source", "segment", "classify", "aggregator", "publisher", "client"]


class Hello(_Strict):
    """A worker announces itself when it connects."""

    kind: Literal["hello"] = "hello"
    worker: Name
    role: Role
    host: Name = ""
    pid: Annotated[int, Field(ge=0, le=2**31)] = 0
    version: Name = ""
    sent_s: Time = 0.0


class Heartbeat(_Strict):
    """A worker is alive; `in_flight` lists the (sample, fov) it is working on."""

    kind: Literal["heartbeat"] = "heartbeat"
    worker: Name
    role: Role
    sent_s: Time = 0.0
    in_flight: tuple[tuple[SampleId, Fov], ...] = Field(default=(), max_length=10_000)
    processed: Annotated[int, Field(ge=0, le=2**62)] = 0


class Ready(_Strict):
    """A worker asks for `credit` more units of work (sent on its work socket); with `reset` the
    worker is idle and its credit is exactly `credit` (how a restarted aggregator learns it)."""

    kind: Literal["ready"] = "ready"
    worker: Name
    role: Role
    credit: Annotated[int, Field(ge=1, le=1024)] = 1
    reset: bool = False


class SummaryMessage(_Strict):
    """Live counts of one sample, published on the PUB socket (schema in docs/pipeline.md)."""

    kind: Literal["summary"] = "summary"
    summary: SampleSummary
    sent_s: Time = 0.0
    workers: tuple[Name, ...] = Field(default=(), max_length=1024)


# --- messages with arrays: typed dataclasses around types.py objects ----------------------------


@dataclass(frozen=True)
class FrameSetMessage:
    """A field of view to segment."""

    frameset: FrameSet
    t_available_s: float = 0.0
    ticket: str = ""  # set by the aggregator on dispatch; the answer carries it back


@dataclass(frozen=True)
class CellBatch:
    """Cells of one field of view; `cell_count` is how many the field has in all (may be 0)."""

    sample_id: str
    fov: int
    cell_count: int
    cells: tuple[CellCrop, ...] = ()
    modalities: tuple[Modality, ...] = MODALITIES  # axis 0 of every crop
    worker: str = ""
    t_available_s: float = 0.0
    ticket: str = ""  # the dispatch this batch is (aggregator -> worker) or answers (worker ->)


@dataclass(frozen=True)
class ResultBatch:
    """Classified cells (any mix of fields and samples)."""

    results: tuple[CellResult, ...]
    worker: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # free-form worker notes (model version...)
    tickets: tuple[tuple[str, int, str], ...] = ()  # (sample_id, fov, ticket) of the work answered


Message: TypeAlias = (
    FrameSetMessage
    | CellBatch
    | ResultBatch
    | FieldDone
    | FieldFailed
    | SampleStart
    | SampleEnd
    | Hello
    | Heartbeat
    | Ready
    | SummaryMessage
)


class _FrameSetHeader(_Strict):
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
    bit_depth: Annotated[int, Field(ge=0, le=limits.MAX_BIT_DEPTH)] = 0  # 0: unknown
    t_available_s: Time = 0.0
    ticket: Ticket = ""


class _CellMeta(_Strict):
    cell_index: Count
    bbox: tuple[Coord, Coord, Coord, Coord]
    area_px: Time = 0.0
    fluorescence_mean: Time = 0.0


class _CellsHeader(_Strict):
    kind: Literal["cells"] = "cells"
    sample_id: SampleId
    fov: Fov
    cell_count: Count
    modalities: tuple[Modality, ...] = Field(min_length=1, max_length=len(MODALITIES))
    worker: Name = ""
    t_available_s: Time = 0.0
    ticket: Ticket = ""
    cells: tuple[_CellMeta, ...] = Field(default=(), max_length=MAX_CELLS_PER_FIELD)


class _ResultMeta(_Strict):
    sample_id: SampleId
    fov: Fov
    cell_index: Count
    cell_class: CellClass
    disagreement: Time = 0.0
    flagged: bool = False
    flag_reason: Text = ""
    bbox: tuple[Coord, Coord, Coord, Coord] = (0, 0, 0, 0)


class _ResultHeader(_Strict):
    kind: Literal["result"] = "result"
    worker: Name = ""
    extra: dict[Name, Text] = Field(default_factory=dict, max_length=64)
    tickets: tuple[tuple[SampleId, Fov, Ticket], ...] = Field(
        default=(), max_length=MAX_CELLS_PER_FIELD
    )
    results: tuple[_ResultMeta, ...] = Field(default=(), max_length=MAX_CELLS_PER_FIELD)


def _envelope(model: type[_Strict]) -> type[_Strict]:
    """The header class of `model`: its fields plus the protocol version and the array list."""
    return create_model(
        f"{model.__name__.lstrip('_')}Envelope",
        __base__=model,
        v=(Literal[1], ...),
        arrays=(tuple[ArraySpec, ...], Field(default=(), max_length=MAX_ARRAYS)),
    )


_HEADER_OF_KIND: dict[str, type[_Strict]] = {
    "frameset": _FrameSetHeader,
    "cells": _CellsHeader,
    "result": _ResultHeader,
    "field_done": FieldDone,
    "field_failed": FieldFailed,
    "sample_start": SampleStart,
    "sample_end": SampleEnd,
    "hello": Hello,
    "heartbeat": Heartbeat,
    "ready": Ready,
    "summary": SummaryMessage,
}
_ENVELOPE_OF_KIND = {kind: _envelope(model) for kind, model in _HEADER_OF_KIND.items()}


def topic(kind: str) -> bytes:
    """The exact prefix of frame 0 for `kind`: subscribe to it on a SUB socket to filter by kind."""
    if kind not in _HEADER_OF_KIND:
        raise WireError(f"unknown message kind {kind!r}")
    return f'{{"v":{PROTOCOL_VERSION},"kind":"{kind}"'.encode()


# --- encoding ---------------------------------------------------------------------------------


Frames: TypeAlias = list[bytes | memoryview]


def _wire_array(array: np.ndarray, name: str) -> tuple[dict[str, Any], memoryview]:
    dtype_name = array.dtype.name
    if dtype_name not in ALLOWED_DTYPES:
        allowed = ", ".join(ALLOWED_DTYPES)
        raise WireError(f"array {name!r}: dtype {array.dtype} not allowed on the wire ({allowed})")
    if array.ndim > MAX_NDIM or any(d > MAX_DIM for d in array.shape):
        raise WireError(f"array {name!r}: shape {array.shape} exceeds the wire bounds")
    wire = np.ascontiguousarray(array, dtype=ALLOWED_DTYPES[dtype_name])
    spec = {"name": name, "dtype": dtype_name, "shape": list(wire.shape)}
    return spec, wire.data.cast("B") if wire.size else memoryview(b"")


def _frames(header: dict[str, Any], arrays: Sequence[tuple[str, np.ndarray]]) -> Frames:
    wired = [_wire_array(array, name) for name, array in arrays]
    body = {"v": PROTOCOL_VERSION, **header, "arrays": [spec for spec, _ in wired]}
    try:
        text = json.dumps(body, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (ValueError, TypeError) as exc:
        raise WireError(f"{header.get('kind')}: header cannot be encoded: {exc}") from None
    # the decoder's own check: whatever is sent is accepted by the receiver
    _ENVELOPE_OF_KIND[header["kind"]].model_validate_json(text, strict=True)
    return [text.encode("utf-8"), *(buffer for _, buffer in wired)]


def _stack(arrays: Sequence[np.ndarray], what: str) -> np.ndarray:
    first = arrays[0]
    for array in arrays[1:]:
        if array.shape != first.shape or array.dtype != first.dtype:
            raise WireError(
                f"{what}: every item must have the same shape and dtype "
                f"({first.shape} {first.dtype} vs {array.shape} {array.dtype})"
            )
    return np.stack(arrays)


def _encode_frameset(message: FrameSetMessage) -> Frames:
    fs = message.frameset
    header = {
        "kind": "frameset",
        "sample_id": fs.sample_id,
        "fov": fs.fov,
        "modalities": [m.value for m in fs.modalities],
        "timestamps_s": list(fs.timestamps_s),
        "exposures_us": list(fs.exposures_us),
        "lit": [m.value for m in fs.lit],
        "shifts_px": [list(s) for s in fs.shifts_px],
        "settings_digest": fs.settings_digest,
        "pixel_size_um": fs.pixel_size_um,
        "bit_depth": fs.bit_depth,
        "t_available_s": message.t_available_s,
        "ticket": message.ticket,
    }
    if len(fs.frames) != len(fs.modalities):
        raise WireError(f"frameset: {len(fs.frames)} frames for {len(fs.modalities)} modalities")
    return _frames(header, [(m.value, f) for m, f in zip(fs.modalities, fs.frames, strict=True)])


def _encode_cells(batch: CellBatch) -> Frames:
    header = {
        "kind": "cells",
        "sample_id": batch.sample_id,
        "fov": batch.fov,
        "cell_count": batch.cell_count,
        "modalities": [m.value for m in batch.modalities],
        "worker": batch.worker,
        "t_available_s": batch.t_available_s,
        "ticket": batch.ticket,
        "cells": [
            {
                "cell_index": c.key.cell_index,
                "bbox": [int(v) for v in c.bbox],
                "area_px": float(c.area_px),
                "fluorescence_mean": float(c.fluorescence_mean),
            }
            for c in batch.cells
        ],
    }
    for cell in batch.cells:
        if (cell.key.sample_id, cell.key.fov) != (batch.sample_id, batch.fov):
            raise WireError(f"cells: {cell.key} is not in field {batch.sample_id}/{batch.fov}")
    arrays = [("crops", _stack([c.crops for c in batch.cells], "crops"))] if batch.cells else []
    return _frames(header, arrays)


def _encode_results(batch: ResultBatch) -> Frames:
    header = {
        "kind": "result",
        "worker": batch.worker,
        "extra": dict(batch.extra),
        "tickets": [list(t) for t in batch.tickets],
        "results": [
            {
                "sample_id": r.key.sample_id,
                "fov": r.key.fov,
                "cell_index": r.key.cell_index,
                "cell_class": r.cell_class.value,
                "disagreement": float(r.disagreement),
                "flagged": bool(r.flagged),
                "flag_reason": r.flag_reason,
                "bbox": [int(v) for v in r.bbox],
            }
            for r in batch.results
        ],
    }
    n = len(batch.results)
    probabilities = np.asarray([r.probabilities for r in batch.results], dtype=np.float64)
    heads = {len(r.head_probabilities) for r in batch.results}
    if len(heads) > 1:
        raise WireError(f"result: every result must have the same number of heads, got {heads}")
    n_heads = heads.pop() if heads else 0
    head_probabilities = np.asarray(
        [r.head_probabilities for r in batch.results], dtype=np.float64
    ).reshape(n, n_heads, len(CELL_CLASSES))
    return _frames(
        header,
        [
            ("probabilities", probabilities.reshape(n, len(CELL_CLASSES))),
            ("head_probabilities", head_probabilities),
        ],
    )


def encode(message: Message) -> Frames:
    """Frames for `socket.send_multipart(frames)`: the JSON header, then the array buffers.

    The buffers are zero-copy views of the message's arrays where they are already C-contiguous
    and little-endian; keep the message alive until the send returns.
    """
    try:
        if isinstance(message, FrameSetMessage):
            return _encode_frameset(message)
        if isinstance(message, CellBatch):
            return _encode_cells(message)
        if isinstance(message, ResultBatch):
            return _encode_results(message)
        if isinstance(message, _Strict) and type(message) in _HEADER_OF_KIND.values():
            return _frames(message.model_dump(mode="json"), [])
    except ValidationError as exc:
        raise WireError(f"cannot encode {type(message).__name__}: {_errors(exc)}") from None
    except ValueError as exc:  # inconsistent shapes in np.asarray / reshape
        raise WireError(f"cannot encode {type(message).__name__}: {exc}") from None
    raise WireError(f"cannot encode {type(message).__name__}: not a wire message")


# --- decoding ---------------------------------------------------------------------------------


def _errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(header)"
        parts.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _byte_view(frame: object, index: int) -> memoryview:
    """A flat byte view of a frame given as bytes, bytearray, memoryview or zmq.Frame."""
    source = getattr(frame, "buffer", frame)
    try:
        view = memoryview(source)  # type: ignore[arg-type]
    except TypeError:
        raise WireError(f"frame {index}: {type(frame).__name__} is not a byte buffer") from None
    if not view.c_contiguous:
        raise WireError(f"frame {index}: buffer is not contiguous")
    return view.cast("B") if (view.format != "B" or view.ndim != 1) else view


def _parse_header(raw: memoryview, limits: WireLimits) -> tuple[str, Any]:
    if raw.nbytes > limits.max_header_bytes:
        raise WireError(f"header is {raw.nbytes} bytes (limit {limits.max_header_bytes})")
    data = bytes(raw)
    try:
        data.decode("utf-8")
        obj = pydantic_core.from_json(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"header is not UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise WireError(f"header must be a JSON object, got {type(obj).__name__}")
    version = obj.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise WireError(f"unsupported protocol version {version!r} (this build speaks 1)")
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in _ENVELOPE_OF_KIND:
        raise WireError(f"unknown message kind {kind!r}; known: {', '.join(KINDS)}")
    try:
        return kind, _ENVELOPE_OF_KIND[kind].model_validate_json(data, strict=True)
    except ValidationError as exc:
        raise WireError(f"{kind}: invalid header: {_errors(exc)}") from None


def _arrays(
    kind: str, specs: Sequence[ArraySpec], buffers: Sequence[memoryview], limits: WireLimits
) -> dict[str, np.ndarray]:
    """Check counts and sizes, then view every buffer as its array (no copy)."""
    if len(specs) != len(buffers):
        raise WireError(f"{kind}: header lists {len(specs)} arrays but {len(buffers)} buffers came")
    sizes = [math.prod(s.shape) * ALLOWED_DTYPES[s.dtype].itemsize for s in specs]
    if sum(sizes) > limits.max_bytes:
        raise WireError(f"{kind}: arrays total {sum(sizes)} bytes (limit {limits.max_bytes})")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise WireError(f"{kind}: duplicate array names {names}")
    out = {}
    for spec, size, buffer in zip(specs, sizes, buffers, strict=True):
        if buffer.nbytes != size:
            raise WireError(
                f"{kind}: array {spec.name!r} {spec.dtype}{list(spec.shape)} needs {size} bytes, "
                f"buffer has {buffer.nbytes}"
            )
        dtype = ALLOWED_DTYPES[spec.dtype]
        out[spec.name] = np.frombuffer(buffer, dtype=dtype).reshape(spec.shape)
    return out


def _expect(kind: str, arrays: dict[str, np.ndarray], names: Sequence[str]) -> None:
    if list(arrays) != list(names):
        raise WireError(f"{kind}: expected arrays {list(names)}, got {list(arrays)}")


def _decode_frameset(h: Any, arrays: dict[str, np.ndarray]) -> FrameSetMessage:
    n = len(h.modalities)
    if len(set(h.modalities)) != n:
        raise WireError(f"frameset: duplicate modalities {[m.value for m in h.modalities]}")
    for name in ("timestamps_s", "exposures_us", "lit", "shifts_px"):
        if len(getattr(h, name)) != n:
            raise WireError(f"frameset: {name} has {len(getattr(h, name))} items, expected {n}")
    _expect("frameset", arrays, [m.value for m in h.modalities])
    for name, frame in arrays.items():
        if frame.ndim not in (2, 3):
            raise WireError(f"frameset: frame {name!r} has {frame.ndim} dimensions (2 or 3)")
        if max(frame.shape[:2]) > limits.MAX_FRAME_SIDE:
            raise WireError(
                f"frameset: frame {name!r} is {list(frame.shape)}; sides are at most "
                f"{limits.MAX_FRAME_SIDE} px"
            )
    frameset = FrameSet(
        sample_id=h.sample_id,
        fov=h.fov,
        modalities=tuple(h.modalities),
        frames=tuple(arrays.values()),
        timestamps_s=tuple(h.timestamps_s),
        exposures_us=tuple(h.exposures_us),
        lit=tuple(h.lit),
        shifts_px=tuple(tuple(s) for s in h.shifts_px),
        settings_digest=h.settings_digest,
        pixel_size_um=h.pixel_size_um,
        bit_depth=h.bit_depth,
    )
    return FrameSetMessage(frameset=frameset, t_available_s=h.t_available_s, ticket=h.ticket)


def _decode_cells(h: Any, arrays: dict[str, np.ndarray]) -> CellBatch:
    n = len(h.cells)
    indices = [c.cell_index for c in h.cells]
    if len(set(indices)) != n:
        raise WireError("cells: duplicate cell_index")
    if any(i >= h.cell_count for i in indices):
        raise WireError(f"cells: a cell_index is >= the field's cell_count {h.cell_count}")
    if len(set(h.modalities)) != len(h.modalities):
        raise WireError("cells: duplicate modalities")
    _expect("cells", arrays, ["crops"] if n else [])
    crops = arrays.get("crops")
    if crops is not None and (
        crops.ndim not in (4, 5) or crops.shape[0] != n or crops.shape[1] != len(h.modalities)
    ):
        raise WireError(
            f"cells: crops shape {list(crops.shape)} should be [{n}, {len(h.modalities)}, H, W(, C)]"
        )
    cells = tuple(
        CellCrop(
            key=CellKey(h.sample_id, h.fov, meta.cell_index),
            bbox=tuple(meta.bbox),
            crops=crops[i],  # type: ignore[index]
            area_px=meta.area_px,
            fluorescence_mean=meta.fluorescence_mean,
        )
        for i, meta in enumerate(h.cells)
    )
    return CellBatch(
        sample_id=h.sample_id,
        fov=h.fov,
        cell_count=h.cell_count,
        cells=cells,
        modalities=tuple(h.modalities),
        worker=h.worker,
        t_available_s=h.t_available_s,
        ticket=h.ticket,
    )


def _decode_results(h: Any, arrays: dict[str, np.ndarray]) -> ResultBatch:
    n, k = len(h.results), len(CELL_CLASSES)
    _expect("result", arrays, ["probabilities", "head_probabilities"])
    probabilities, heads = arrays["probabilities"], arrays["head_probabilities"]
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
        CellResult(
            key=CellKey(meta.sample_id, meta.fov, meta.cell_index),
            cell_class=meta.cell_class,
            probabilities=tuple(probabilities[i].tolist()),
            head_probabilities=tuple(tuple(row) for row in heads[i].tolist()),
            disagreement=meta.disagreement,
            flagged=meta.flagged,
            flag_reason=meta.flag_reason,
            bbox=tuple(meta.bbox),
        )
        for i, meta in enumerate(h.results)
    )
    tickets = tuple((s, f, t) for s, f, t in h.tickets)
    return ResultBatch(results=results, worker=h.worker, extra=dict(h.extra), tickets=tickets)


def _decode(frames: Sequence[object], limits: WireLimits) -> Message:
    if not isinstance(frames, Sequence) or isinstance(frames, (bytes, bytearray, str)):
        raise WireError("a message is a sequence of frames")
    if not 1 <= len(frames) <= MAX_FRAMES:
        raise WireError(f"a message has 1 to {MAX_FRAMES} frames, got {len(frames)}")
    views = [_byte_view(frame, i) for i, frame in enumerate(frames)]
    kind, header = _parse_header(views[0], limits)
    arrays = _arrays(kind, header.arrays, views[1:], limits)
    if kind == "frameset":
        return _decode_frameset(header, arrays)
    if kind == "cells":
        return _decode_cells(header, arrays)
    if kind == "result":
        return _decode_results(header, arrays)
    _expect(kind, arrays, [])
    model = _HEADER_OF_KIND[kind]
    values = {name: getattr(header, name) for name in model.model_fields}
    message: Message = model.model_construct(**values)  # type: ignore[assignment]
    return message  # already validated by the envelope


def decode(frames: Sequence[object], limits: WireLimits = DEFAULT_LIMITS) -> Message:
    """The message carried by `frames` (bytes, memoryviews or zmq.Frame objects).

    Raises `WireError` (and nothing else) for any malformed input. Arrays in the result are
    read-only views of the frames when the frames are immutable.
    """
    try:
        return _decode(frames, limits)
    except WireError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise WireError(f"malformed message: {type(exc).__name__}: {exc}") from None


# --- socket helpers ---------------------------------------------------------------------------

COPY_THRESHOLD_BYTES = 64 * 1024
"""Messages with more array bytes than this are sent zero-copy."""


def send_message(socket: Any, message: Message, flags: int = 0, route: bytes | None = None) -> None:
    """Encode and send `message` on a zmq socket (zero-copy for large buffers).

    `route` is the peer identity a ROUTER socket sends to (prepended as the first frame).
    """
    frames = encode(message)
    big = sum(len(f) if isinstance(f, bytes) else f.nbytes for f in frames[1:])
    prefix = [] if route is None else [route]
    socket.send_multipart([*prefix, *frames], flags=flags, copy=big <= COPY_THRESHOLD_BYTES)


def recv_routed(
    socket: Any, timeout_ms: int, limits: WireLimits = DEFAULT_LIMITS
) -> tuple[bytes, Message] | None:
    """The next (peer identity, message) from a ROUTER socket, or None after `timeout_ms`.

    Raises `WireError` when the message is malformed (it has been consumed from the socket).
    """
    if not socket.poll(timeout_ms):
        return None
    frames = socket.recv_multipart(copy=False)
    return bytes(frames[0].buffer), decode(frames[1:], limits)


def recv_message(
    socket: Any, timeout_ms: int, limits: WireLimits = DEFAULT_LIMITS
) -> Message | None:
    """The next message from a zmq socket, or None if none arrives within `timeout_ms`.

    Raises `WireError` when the message is malformed (it has been consumed from the socket).
    """
    if not socket.poll(timeout_ms):
        return None
    return decode(socket.recv_multipart(copy=False), limits)
