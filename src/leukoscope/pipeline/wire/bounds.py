"""What the wire accepts: dtypes, dimension and size limits, and the bounded field types of headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from leukoscope import limits

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
BitDepth = Annotated[int, Field(ge=0, le=limits.MAX_BIT_DEPTH)]  # 0: unknown
Ticket = Annotated[str, Field(max_length=64, pattern=r"^[0-9a-f]*$")]
"""The aggregator's unguessable id of one dispatch of one unit; an answer echoes it (or is dropped)."""
Role = Literal["source", "segment", "classify", "aggregator", "publisher", "client"]


class Strict(BaseModel):
    """Base of every header schema: no extra keys, immutable, no type coercion."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ArraySpec(Strict):
    """One array buffer announced in a header."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    dtype: Literal["uint8", "uint16", "int32", "int64", "float32", "float64"]
    shape: tuple[Annotated[int, Field(ge=0, le=MAX_DIM)], ...] = Field(max_length=MAX_NDIM)
