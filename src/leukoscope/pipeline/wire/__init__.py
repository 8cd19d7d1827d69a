"""The pipeline's multipart message codec: a versioned JSON header plus raw array buffers.

Frame 0 is a UTF-8 JSON object ``{"v": 1, "kind": ..., ...metadata, "arrays": [{"name", "dtype",
"shape"}]}``; frames 1..n are the raw C-contiguous little-endian buffers of those arrays, in order.
Decoding validates everything (header schema with pydantic in strict mode, the dtype whitelist, shape
and size bounds, each buffer's length against dtype x shape) *before* any array is built, and raises
`WireError` for every malformed input. Arrays are built with `np.frombuffer` (no copy): they are
read-only views of the received frames. No pickle, ever. The schema of each kind is in docs/pipeline.md.

Modules: `bounds` (limits and bounded field types), `messages` (the Python messages), `kinds` (one
table entry per kind: header schema and the mapping both ways), `fields` (copy by field name),
`codec` (encode/decode and the door checks), `sockets` (send/receive on zmq).
"""

from __future__ import annotations

from leukoscope.pipeline.wire.bounds import (
    ALLOWED_DTYPES,
    DEFAULT_LIMITS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    MAX_ARRAYS,
    MAX_CELLS_PER_FIELD,
    MAX_DIM,
    MAX_FRAME_BYTES,
    MAX_FRAMES,
    MAX_NDIM,
    PROTOCOL_VERSION,
    ArraySpec,
    Role,
    WireLimits,
)
from leukoscope.pipeline.wire.codec import Frames, decode, encode, topic
from leukoscope.pipeline.wire.kinds import KINDS as KIND_TABLE
from leukoscope.pipeline.wire.messages import (
    CellBatch,
    FieldDone,
    FieldFailed,
    FrameSetMessage,
    Heartbeat,
    Hello,
    Message,
    Ready,
    ResultBatch,
    SampleEnd,
    SampleStart,
    SummaryMessage,
)
from leukoscope.pipeline.wire.sockets import (
    COPY_THRESHOLD_BYTES,
    recv_message,
    recv_routed,
    send_message,
)

KINDS = tuple(KIND_TABLE)
"""Every message kind's name, as frame 0's `kind` carries it."""

__all__ = [
    "ALLOWED_DTYPES",
    "COPY_THRESHOLD_BYTES",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "KINDS",
    "KIND_TABLE",
    "MAX_ARRAYS",
    "MAX_CELLS_PER_FIELD",
    "MAX_DIM",
    "MAX_FRAMES",
    "MAX_FRAME_BYTES",
    "MAX_NDIM",
    "PROTOCOL_VERSION",
    "ArraySpec",
    "CellBatch",
    "FieldDone",
    "FieldFailed",
    "FrameSetMessage",
    "Frames",
    "Heartbeat",
    "Hello",
    "Message",
    "Ready",
    "ResultBatch",
    "Role",
    "SampleEnd",
    "SampleStart",
    "SummaryMessage",
    "WireLimits",
    "decode",
    "encode",
    "recv_message",
    "recv_routed",
    "send_message",
    "topic",
]
