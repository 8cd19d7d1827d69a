"""Encode and decode: the kind table (`kinds.py`) applied to frames, with every check at the door.

Frame 0 is a UTF-8 JSON object ``{"v": 1, "kind": ..., ...metadata, "arrays": [{"name", "dtype",
"shape"}]}``; frames 1..n are the raw C-contiguous little-endian buffers of those arrays, in order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import pydantic_core
from pydantic import Field, ValidationError, create_model

from leukoscope.errors import WireError
from leukoscope.pipeline.wire.bounds import (
    ALLOWED_DTYPES,
    DEFAULT_LIMITS,
    MAX_ARRAYS,
    MAX_DIM,
    MAX_FRAMES,
    MAX_NDIM,
    PROTOCOL_VERSION,
    ArraySpec,
    Strict,
    WireLimits,
)
from leukoscope.pipeline.wire.fields import json_default
from leukoscope.pipeline.wire.kinds import KIND_OF_CLASS, KINDS
from leukoscope.pipeline.wire.messages import Message

Frames: TypeAlias = list[bytes | memoryview]


def _envelope(model: type[Strict]) -> type[Strict]:
    """The header class of `model`: its fields plus the protocol version and the array list."""
    return create_model(
        f"{model.__name__.lstrip('_')}Envelope",
        __base__=model,
        v=(Literal[1], ...),
        arrays=(tuple[ArraySpec, ...], Field(default=(), max_length=MAX_ARRAYS)),
    )


_ENVELOPE_OF_KIND = {name: _envelope(kind.header) for name, kind in KINDS.items()}


def topic(kind: str) -> bytes:
    """The exact prefix of frame 0 for `kind`: subscribe to it on a SUB socket to filter by kind."""
    if kind not in KINDS:
        raise WireError(f"unknown message kind {kind!r}")
    return f'{{"v":{PROTOCOL_VERSION},"kind":"{kind}"'.encode()


# --- encoding ---------------------------------------------------------------------------------


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
        text = json.dumps(
            body, separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=json_default
        )
    except (ValueError, TypeError) as exc:
        raise WireError(f"{header.get('kind')}: header cannot be encoded: {exc}") from None
    # the decoder's own check: whatever is sent is accepted by the receiver
    _ENVELOPE_OF_KIND[header["kind"]].model_validate_json(text, strict=True)
    return [text.encode("utf-8"), *(buffer for _, buffer in wired)]


def encode(message: Message) -> Frames:
    """Frames for `socket.send_multipart(frames)`: the JSON header, then the array buffers.

    The buffers are zero-copy views of the message's arrays where they are already C-contiguous
    and little-endian; keep the message alive until the send returns.
    """
    kind = next((KIND_OF_CLASS[c] for c in type(message).__mro__ if c in KIND_OF_CLASS), None)
    if kind is None:
        raise WireError(f"cannot encode {type(message).__name__}: not a wire message")
    try:
        return _frames(*kind.to_wire(message))
    except ValidationError as exc:
        raise WireError(f"cannot encode {type(message).__name__}: {_errors(exc)}") from None
    except ValueError as exc:  # inconsistent shapes in np.asarray / reshape
        raise WireError(f"cannot encode {type(message).__name__}: {exc}") from None


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


def _decode(frames: Sequence[object], limits: WireLimits) -> Message:
    if not isinstance(frames, Sequence) or isinstance(frames, (bytes, bytearray, str)):
        raise WireError("a message is a sequence of frames")
    if not 1 <= len(frames) <= MAX_FRAMES:
        raise WireError(f"a message has 1 to {MAX_FRAMES} frames, got {len(frames)}")
    views = [_byte_view(frame, i) for i, frame in enumerate(frames)]
    kind, header = _parse_header(views[0], limits)
    arrays = _arrays(kind, header.arrays, views[1:], limits)
    message: Message = KINDS[kind].from_wire(header, arrays)
    return message


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
