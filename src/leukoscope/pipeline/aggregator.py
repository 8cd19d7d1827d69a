"""The central stage: one poller over every socket it binds, wiring the dispatcher to the book.

Work goes out on two ROUTER sockets (framesets to segment workers, cell batches to classify
workers) as the `Dispatcher` hands it out against the credit workers asked for; everything workers
produce comes back on one PULL socket and is written into the `SampleBook` (ledger, store, live
summaries). Only an answer to a dispatch of that very unit, from the worker it went to, is taken:
the worker is its authenticated CurveZMQ key when keys are configured, else the name it gave. The
loop blocks in `zmq.Poller.poll` until a message arrives or the next deadline (an overdue unit, a
summary to publish) is due, on one monotonic clock: an idle aggregator uses no CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import zmq

from leukoscope.config import PipelineConfig
from leukoscope.errors import PipelineError
from leukoscope.pipeline import wire
from leukoscope.pipeline.answers import Answers
from leukoscope.pipeline.dispatcher import STAGES, Dispatcher, Stage, Unit, WorkerInfo
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.hub import Hub, Received
from leukoscope.pipeline.intake import Intake
from leukoscope.pipeline.sample_book import FieldReplay, SampleBook, SampleRun
from leukoscope.pipeline.security import CurveKeys
from leukoscope.results.store import Producer, ResultStore
from leukoscope.types import SampleSummary

log = logging.getLogger(__name__)

NO_ANSWER = "no_answer"
"""How the failure reason of a field whose workers did not answer in time begins."""
STEP_S = 0.02  # how long one `step()` waits for a message by default
IDLE_CHECK_S = 0.25  # how often `run_until` looks at its condition when nothing else is due
SummaryCallback = Callable[[SampleSummary, Mapping[str, WorkerInfo]], None]


class Aggregator:
    """Dispatch, accounting, storage and live publishing for any number of samples."""

    def __init__(
        self,
        context: zmq.Context[Any],
        endpoints: Endpoints,
        store: ResultStore,
        *,
        run_id: str,
        target_cells: int,
        max_in_flight: int = 8,
        high_water_mark: int = 8,
        worker_timeout_s: float = 10.0,
        max_attempts: int = 2,
        keys: CurveKeys | None = None,
        on_summary: SummaryCallback | None = None,
        live_also: str = "",
        acquisition_root: Path | None = None,
        replay: FieldReplay | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.run_id, self.clock = store, run_id, clock
        self.max_in_flight = max_in_flight
        self.on_summary = on_summary
        self.dispatcher = Dispatcher(
            clock, worker_timeout_s=worker_timeout_s, max_attempts=max_attempts
        )
        self.book = SampleBook(
            store, run_id, target_cells=target_cells, clock=clock, emit=self._emit,
            replay=self._replay, release=self._release,
        )  # fmt: skip
        self.hub = Hub(context, endpoints, keys, high_water_mark, live_also)
        self.ingest, self.results, self.live = self.hub.ingest, self.hub.results, self.hub.live
        self.intake = Intake(
            self.book, self.dispatcher, self.hub.reject, replay=replay,
            acquisition_root=acquisition_root,
        )  # fmt: skip
        self.answers = Answers(self.book, self.dispatcher, self.hub.reject)

    @classmethod
    def from_config(
        cls, context: zmq.Context[Any], endpoints: Endpoints, store: ResultStore,
        config: PipelineConfig, **kwargs: Any,
    ) -> Aggregator:  # fmt: skip
        """An aggregator with the pipeline settings' bounds and timeouts."""
        return cls(
            context, endpoints, store, target_cells=config.target_cells,
            max_in_flight=config.high_water_mark, high_water_mark=config.high_water_mark,
            worker_timeout_s=config.worker_timeout_s, **kwargs,
        )  # fmt: skip

    @property
    def samples(self) -> dict[str, SampleRun]:
        """The running samples."""
        return self.book.samples

    @property
    def finished(self) -> dict[str, SampleSummary]:
        """Final summaries of the samples finished in this run."""
        return self.book.finished

    @property
    def workers(self) -> dict[str, WorkerInfo]:
        """The workers heard from."""
        return self.dispatcher.workers

    @property
    def forged(self) -> int:
        """Answers dropped: no such dispatch, or not to the worker that answered."""
        return self.answers.forged

    @property
    def rejected(self) -> int:
        """Messages refused (malformed, unknown, unwelcome or forged)."""
        return self.hub.rejected

    def close(self) -> None:
        """Close every socket."""
        self.hub.close()

    # -- the loop ---------------------------------------------------------------------------------

    def step(self, timeout_s: float = STEP_S) -> None:
        """Wait for a message (at most `timeout_s`, less when a deadline is due sooner), handle all
        that arrived, then hand out work, re-dispatch overdue units and publish."""
        deadlines = [self.dispatcher.next_deadline(), self.book.next_deadline()]
        due = min((d for d in deadlines if d is not None), default=None)
        if due is not None:
            timeout_s = min(timeout_s, max(0.0, due - self.clock()))
        room = lambda: self.book.in_flight < self.max_in_flight  # noqa: E731
        for received in self.hub.poll(timeout_s, room=room):
            self._handle(received)
        for stage in STAGES:
            self.dispatcher.dispatch(stage, self._sender(stage))
        for unit in self.dispatcher.overdue():
            self.dispatcher.retire(unit.sample_id, unit.fov)
            run = self.book.samples.get(unit.sample_id)
            if run is not None:
                reason = (
                    f"{NO_ANSWER}: no {unit.stage} result within "
                    f"{self.dispatcher.worker_timeout_s:g} s, {unit.attempts} attempt(s)"
                )
                principal = list(unit.tickets.values())[-1] if unit.tickets else ""
                worker = Producer.of(self.dispatcher.name_of(unit.holder), principal)
                self.book.fail(run, unit.fov, reason, worker)
                self.book.finish_if_done(unit.sample_id)
        self.book.publish()

    def run_until(self, done: Callable[[], bool], timeout_s: float | None = None) -> None:
        """Step until `done()`; PipelineError if `timeout_s` passes first."""
        deadline = None if timeout_s is None else self.clock() + timeout_s
        while not done():
            self.step(IDLE_CHECK_S)
            if deadline is not None and self.clock() > deadline:
                raise PipelineError(f"pipeline did not finish within {timeout_s:.0f} s")

    def _sender(self, stage: Stage) -> Callable[[bytes, Unit, str], bool]:
        sock = self.hub.work[stage]

        def send(identity: bytes, unit: Unit, ticket: str) -> bool:
            message = dataclasses.replace(unit.message, ticket=ticket)
            try:
                wire.send_message(sock, message, flags=zmq.NOBLOCK, route=identity)
            except zmq.ZMQError:  # the worker disconnected (or its queue is full)
                return False
            return True

        return send

    def _principal(self, received: Received, claimed: str) -> str:
        """Who sent a message: its authenticated key with CurveZMQ, else the name it claims."""
        return f"key:{received.user_id}" if self.hub.keys is not None else claimed

    def _handle(self, received: Received) -> None:
        message = received.message
        if received.socket == "ingest":
            self.intake.on_message(message)
        elif received.socket != "results":
            stage = received.socket
            if not isinstance(message, wire.Ready) or message.role != stage:
                kind = type(message).__name__
                self.hub.reject(f"ignored a {kind} message on the {stage} socket")
                return
            principal = self._principal(received, message.worker)
            self.dispatcher.ready(
                stage, received.identity, message.worker, principal, message.credit, message.reset
            )
        elif isinstance(message, (wire.Hello, wire.Heartbeat)):
            info = self.dispatcher.seen(message.worker, message.role)
            if isinstance(message, wire.Hello):
                info.host, info.pid = message.host, message.pid
                log.info(
                    "worker %s (%s) connected from %s", message.worker, message.role, message.host
                )
            else:
                info.processed = message.processed
        elif isinstance(message, wire.ResultBatch):
            self.answers.on_results(message, self._principal(received, message.worker))
        elif isinstance(message, (wire.CellBatch, wire.FieldFailed)):
            self.answers.on_answer(message, self._principal(received, message.worker))
        else:
            self.hub.reject(f"ignored a {type(message).__name__} message on the results socket")

    # -- publishing -------------------------------------------------------------------------------

    def _emit(self, summary: SampleSummary) -> None:
        workers = tuple(self.dispatcher.live_workers())
        message = wire.SummaryMessage(summary=summary, sent_s=time.time(), workers=workers)
        wire.send_message(self.live, message, flags=zmq.NOBLOCK)
        if self.on_summary is not None:
            self.on_summary(summary, self.dispatcher.workers)

    def _replay(self, summary: SampleSummary) -> None:
        message = wire.SummaryMessage(summary=summary, sent_s=time.time())
        wire.send_message(self.live, message, flags=zmq.NOBLOCK)

    def _release(self, sample_id: str, fov: int | None) -> None:
        """The book settled a field (its units leave the dispatcher) or a whole sample."""
        if fov is None:
            self.dispatcher.forget(sample_id)
        else:
            self.dispatcher.retire(sample_id, fov)

    def resume(self) -> list[str]:
        """Take up the samples of this run that the store says are still running; their ids."""
        return self.intake.resume()

    def abort(self, sample_id: str, reason: str) -> SampleSummary | None:
        """Finish a running sample as incomplete (e.g. Ctrl-C); its summary."""
        return self.book.abort(sample_id, reason)


__all__ = ["Aggregator", "SummaryCallback", "WorkerInfo"]
