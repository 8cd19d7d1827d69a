"""The central process's sockets: bound once, polled together, read with who sent each message.

`Hub` binds the five endpoints (ingest PULL, segment and classify ROUTER, results PULL, live PUB)
with the house limits (zmq.MAXMSGSIZE, high-water marks, ROUTER_MANDATORY), turns a port in use
into one clear `PipelineError`, and waits on all of them in one `zmq.Poller`. Each message comes out
decoded with its socket, its ROUTER identity and the ZAP User-Id the authenticator gave the peer's
CurveZMQ key, so the aggregator can tell who really sent it; malformed messages are counted, logged
and dropped here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

import zmq

from leukoscope.errors import PipelineError, WireError
from leukoscope.pipeline import wire
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.security import CurveKeys, secure_server

log = logging.getLogger(__name__)

SocketName = Literal["ingest", "segment", "classify", "results"]
INGEST_BUDGET = 64  # ingest messages per round at most (fields are read only while there is room)
RESULTS_BUDGET = 256  # answers per round at most, so dispatch and retries are never starved


@dataclass(frozen=True)
class Received:
    """One decoded message, where it came in, and who sent it."""

    socket: SocketName
    message: wire.Message
    identity: bytes = b""  # the peer's ROUTER identity (work sockets)
    user_id: str = ""  # the ZAP User-Id of the peer's CurveZMQ key ("" without keys)


def user_id(frame: zmq.Frame) -> str:
    """The ZAP User-Id attached to a received frame ("" when no authenticator set one)."""
    try:
        return str(frame.get("User-Id"))
    except (zmq.ZMQError, UnicodeDecodeError):
        return ""


def _why(exc: zmq.ZMQError) -> str:
    """ZeroMQ's one-line reason, without the address pyzmq appends to a bind error."""
    return zmq.strerror(exc.errno) if exc.errno is not None else str(exc)


class Hub:
    """Binds and polls the central sockets."""

    def __init__(
        self,
        context: zmq.Context[Any],
        endpoints: Endpoints,
        keys: CurveKeys | None,
        high_water_mark: int,
        live_also: str = "",
    ) -> None:
        self.keys = keys
        self.rejected = 0
        self._sockets: list[zmq.Socket[Any]] = []
        try:
            self.ingest = self._bind(context, zmq.PULL, endpoints.ingest, high_water_mark)
            self.work: dict[str, zmq.Socket[Any]] = {
                "segment": self._bind(context, zmq.ROUTER, endpoints.segment, 0),
                "classify": self._bind(context, zmq.ROUTER, endpoints.classify, 0),
            }
            self.results = self._bind(context, zmq.PULL, endpoints.results, 0)
            self.live = self._bind(context, zmq.PUB, endpoints.live, 1000)
        except BaseException:
            self.close()  # sockets left open would keep the context from ever terminating
            raise
        if live_also:
            try:
                self.live.bind(live_also)
            except zmq.ZMQError as exc:
                log.warning("live summaries not published on %s: %s", live_also, _why(exc))
        self._names: dict[zmq.Socket[Any], SocketName] = {
            self.ingest: "ingest", self.work["segment"]: "segment",
            self.work["classify"]: "classify", self.results: "results",
        }  # fmt: skip
        self._poller = zmq.Poller()
        for sock in (self.results, *self.work.values()):
            self._poller.register(sock, zmq.POLLIN)

    def _bind(
        self, context: zmq.Context[Any], kind: int, address: str, hwm: int
    ) -> zmq.Socket[Any]:
        sock = context.socket(kind)
        self._sockets.append(sock)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME_BYTES)  # a bigger frame: peer disconnected
        if kind == zmq.ROUTER:
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a vanished worker raises, not drops
        else:
            sock.setsockopt(zmq.SNDHWM if kind == zmq.PUB else zmq.RCVHWM, hwm)
        secure_server(sock, self.keys)
        try:
            sock.bind(address)
        except zmq.ZMQError as exc:
            raise PipelineError(f"cannot listen on {address}: {_why(exc)}") from None
        return cast("zmq.Socket[Any]", sock)

    def close(self) -> None:
        """Close every socket."""
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def reject(self, why: str) -> None:
        """Count and log a refused message."""
        self.rejected += 1
        log.warning("%s", why)

    def poll(self, timeout_s: float, *, room: Callable[[], bool]) -> Iterator[Received]:
        """Wait up to `timeout_s` for any socket (ingest only while there is `room()`), then
        yield what arrived: ingest first (while `room()` holds), then answers, then credit."""
        self._poller.register(self.ingest, zmq.POLLIN if room() else 0)  # 0: unregister
        ready = dict(self._poller.poll(max(0, round(timeout_s * 1000))))
        if self.ingest in ready:
            for _ in range(INGEST_BUDGET):
                received = self._recv(self.ingest) if room() else None
                if received is None:
                    break
                yield received
        if self.results in ready:
            for _ in range(RESULTS_BUDGET):
                received = self._recv(self.results)
                if received is None:
                    break
                yield received
        for sock in self.work.values():
            if sock in ready:
                while (received := self._recv(sock)) is not None:
                    yield received

    def _recv(self, sock: zmq.Socket[Any]) -> Received | None:
        """The next well-formed message on `sock` (malformed ones are rejected), or None."""
        name = self._names[sock]
        routed = name in ("segment", "classify")
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            sender = user_id(frames[-1]) if self.keys is not None else ""
            if self.keys is not None and not sender:
                self.reject(f"dropped a message on the {name} socket: no authenticated key")
                continue
            try:
                message = wire.decode(frames[1:] if routed else frames)
            except WireError as exc:
                self.reject(f"rejected a malformed message on the {name} socket: {exc}")
                continue
            identity = bytes(frames[0].buffer) if routed else b""
            return Received(name, message, identity, sender)
