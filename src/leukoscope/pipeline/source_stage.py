"""The source stage: pushes one sample's fields into the ingest socket, in order, with its start and
end, and waits for its final summary. The same class runs as a thread (embedded) or in `send`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import zmq

from leukoscope.errors import WireError
from leukoscope.pipeline import wire
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.security import CurveKeys, secure_client
from leukoscope.pipeline.stages import POLL_MS
from leukoscope.types import FrameSet, SampleStatus, SampleSummary

RESEND_END_S = 2.0


@dataclass(frozen=True)
class FieldOutcome:
    """What a source produced for one field of view: frames, or the reason there are none."""

    fov: int
    frameset: FrameSet | None
    reason: str = ""


class Source:
    """Pushes the fields of one sample into the ingest socket, in order, with its start and end.

    Sending blocks while the aggregator is not pulling (back-pressure); the source also listens to
    the live summaries and stops early once its sample is complete (the target count is reached).
    """

    def __init__(
        self,
        context: zmq.Context[Any],
        endpoints: Endpoints,
        stop: threading.Event,
        keys: CurveKeys | None = None,
        high_water_mark: int = 1,
    ) -> None:
        self.context = context
        self.endpoints = endpoints
        self.stop = stop
        self.keys = keys
        self.high_water_mark = high_water_mark
        self.final: dict[str, SampleSummary] = {}  # final summaries seen on the live socket

    def _connect(self, kind: int, address: str) -> zmq.Socket[Any]:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME_BYTES)
        sock.setsockopt(zmq.SNDHWM, self.high_water_mark)  # queued fields wait here, bounded
        secure_client(sock, self.keys)
        if kind == zmq.SUB:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(address)
        return cast("zmq.Socket[Any]", sock)

    def _finished(self, live: zmq.Socket[Any], sample_id: str) -> bool:
        while True:
            try:
                message = wire.recv_message(live, 0)
            except WireError:
                continue
            if message is None:
                return False
            if (
                isinstance(message, wire.SummaryMessage)
                and message.summary.sample_id == sample_id
                and message.summary.status != SampleStatus.RUNNING
            ):
                self.final[sample_id] = message.summary
                return True

    def _send(
        self, push: zmq.Socket[Any], live: zmq.Socket[Any], sample_id: str, message: wire.Message
    ) -> bool:
        """Send, waiting while the pipeline is full; False if stopped or the sample finished."""
        while not self.stop.is_set():
            if push.poll(POLL_MS, zmq.POLLOUT):
                wire.send_message(push, message)
                return True
            if self._finished(live, sample_id):
                return False
        return False

    def send_sample(
        self,
        sample_id: str,
        fields: Iterable[FieldOutcome],
        fields_total: int | None = None,
        acquisition: str = "",
        simulated: bool = False,
    ) -> int:
        """Stream one sample and wait for its final summary; returns how many fields were sent.

        The end of the sample is sent again every few seconds until the final summary arrives, so
        an aggregator restarted meanwhile still learns how many fields there were.
        """
        push = self._connect(zmq.PUSH, self.endpoints.ingest)
        live = self._connect(zmq.SUB, self.endpoints.live)
        sent = 0
        try:
            start = wire.SampleStart(
                sample_id=sample_id,
                fields_total=fields_total,
                started_s=time.time(),
                acquisition=acquisition,
                simulated=simulated,
            )
            if not self._send(push, live, sample_id, start):
                return 0
            for outcome in _until_finished(fields, lambda: self._finished(live, sample_id)):
                message = field_message(sample_id, outcome)
                if not self._send(push, live, sample_id, message):
                    return sent
                sent += 1
            end = wire.SampleEnd(sample_id=sample_id, fields_total=sent)
            while self._send(push, live, sample_id, end):
                deadline = time.monotonic() + RESEND_END_S
                while time.monotonic() < deadline and not self.stop.is_set():
                    if self._finished(live, sample_id):
                        return sent
                    time.sleep(POLL_MS / 1000)
            return sent
        finally:
            close = getattr(fields, "close", None)
            if close is not None:
                close()  # a generator over a rig: lights off, camera stopped
            push.close()
            live.close()


def field_message(sample_id: str, outcome: FieldOutcome) -> wire.Message:
    """The field's frames, or a failure with the reason: also when the frames cannot go on the
    wire (a value out of bounds in a file's metadata fails that field, never the sample)."""
    reason = outcome.reason
    if outcome.frameset is not None:
        message = wire.FrameSetMessage(outcome.frameset, t_available_s=time.time())
        try:
            wire.encode(message)
            return message
        except WireError as exc:
            reason = str(exc)
    return wire.FieldFailed(
        sample_id=sample_id, fov=outcome.fov, reason=reason[:4000], stage="source"
    )


def _until_finished(
    fields: Iterable[FieldOutcome], finished: Callable[[], bool]
) -> Iterator[FieldOutcome]:
    for outcome in fields:
        if finished():
            return
        yield outcome
