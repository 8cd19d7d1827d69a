"""Sending and receiving wire messages on zmq sockets (zero-copy for large buffers)."""

from __future__ import annotations

from typing import Any

from leukoscope.pipeline.wire.bounds import DEFAULT_LIMITS, WireLimits
from leukoscope.pipeline.wire.codec import decode, encode
from leukoscope.pipeline.wire.messages import Message

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
