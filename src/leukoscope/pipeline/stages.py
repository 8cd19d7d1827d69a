"""The pipeline's worker stages: segment worker, classify worker (the source: source_stage.py).

Each stage owns its sockets, connects to the central process's endpoints, and runs until its stop
event is set. The same classes run as threads over inproc (embedded) or in their own processes over
tcp (`leukoscope worker ...`): there is no code path for one mode only.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import zmq

from leukoscope import __version__
from leukoscope.config import PipelineConfig
from leukoscope.errors import LeukoscopeError, WireError, WorkStopped
from leukoscope.pictures.thumbnail import thumbnail
from leukoscope.pipeline import budget, wire
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.field_quality import failure_reason, field_quality_of
from leukoscope.pipeline.security import CurveKeys, secure_client
from leukoscope.results.counts import result_from_heads
from leukoscope.types import CELL_CLASSES, CellClass, CellCrop, CellResult, FrameSet, Modality

log = logging.getLogger(__name__)

POLL_MS = 50
HEARTBEAT_S = 1.0
SEND_TIMEOUT_MS = 2000
IDLE_RESET_S = 2.0  # an idle worker re-announces its full credit this often

Segmenter = Callable[[FrameSet], list[CellCrop]]
"""Finds the white cells of a field and cuts their crops."""
HeadClassifier = Callable[[np.ndarray], "np.ndarray | tuple[np.ndarray, list[str]]"]
"""Raw crops (B, M, H, W) in `modalities` order -> per-head probabilities (B, heads, classes), or
those with each cell's open-set reason (`unidentified: ...` or "", `assembly.head_classifier`)."""


def cell_results(
    cells: Sequence[CellCrop],
    heads: np.ndarray,
    reasons: Sequence[str],
    *,
    min_probability: float,
    max_disagreement: float,
    classes: Sequence[CellClass] = CELL_CLASSES,
) -> tuple[CellResult, ...]:
    """Each cell's result from its head probabilities (over the model's `classes`) and open-set
    reason ("" for none), flagged for review by the pipeline's thresholds."""
    return tuple(
        result_from_heads(
            cell.key,
            head,
            min_probability=min_probability,
            max_disagreement=max_disagreement,
            bbox=cell.bbox,
            unidentified=reason,
            classes=classes,
        )
        for cell, head, reason in zip(cells, heads, reasons, strict=True)
    )


def _worker_name(role: str) -> str:
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _Worker:
    """Shared plumbing: work and results sockets, hello, credits, heartbeats, clean close.

    Work is pulled, not pushed: the worker's DEALER socket sends `ready` with a credit (how many
    units it can take), and the aggregator sends work only against credit. A stalled or dead worker
    stops asking, so it is never handed more work, and what it held is re-dispatched elsewhere.
    """

    role: wire.Role = "client"
    prefetch = 2  # units asked for up front, so the next one is queued while this one runs

    def __init__(
        self,
        context: zmq.Context[Any],
        endpoints: Endpoints,
        stop: threading.Event,
        keys: CurveKeys | None = None,
    ) -> None:
        self.context = context
        self.endpoints = endpoints
        self.stop = stop
        self.keys = keys
        self.name = _worker_name(self.role)
        self.processed = 0
        self._in_flight: tuple[tuple[str, int], ...] = ()
        self._last_beat = 0.0

    def _socket(self, kind: int, address: str) -> zmq.Socket[Any]:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME_BYTES)
        sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)  # never block forever on a gone aggregator
        secure_client(sock, self.keys)
        sock.connect(address)
        return cast("zmq.Socket[Any]", sock)

    def _beat(self, out: zmq.Socket[Any], force: bool = False) -> None:
        now = time.time()
        if force or now - self._last_beat >= HEARTBEAT_S:
            self._last_beat = now
            beat = wire.Heartbeat(
                worker=self.name,
                role=self.role,
                sent_s=now,
                in_flight=self._in_flight,
                processed=self.processed,
            )
            wire.send_message(out, beat)

    def run(self) -> None:
        """Serve until the stop event is set."""
        work = self._socket(zmq.DEALER, self._work_address())
        out = self._socket(zmq.PUSH, self.endpoints.results)
        try:
            hello = wire.Hello(
                worker=self.name,
                role=self.role,
                host=socket.gethostname(),
                pid=os.getpid(),
                version=__version__,
                sent_s=time.time(),
            )
            greeted = False
            idle_since = time.monotonic()
            while not self.stop.is_set():
                try:
                    if not greeted:  # retried until the aggregator is there
                        wire.send_message(out, hello)
                        self._ask(work, self.prefetch)
                        greeted = True
                    self._beat(out)
                    message = wire.recv_message(work, POLL_MS)
                    if message is not None:
                        self._ask(work, self._handle(message, work, out))
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > IDLE_RESET_S:
                        self._ask(work, self.prefetch, reset=True)  # e.g. a restarted aggregator
                        idle_since = time.monotonic()
                except WireError as exc:
                    log.warning("%s: rejected a malformed message: %s", self.name, exc)
                    self._ask(work, 1)
                except zmq.Again:  # the aggregator is away; it re-dispatches what was lost
                    log.warning("%s: could not reach the aggregator in time", self.name)
                    # a connection zmq cut for good (an over-size frame: MAXMSGSIZE) is never
                    # retried by zmq itself: connect afresh and greet again
                    work.close(linger=0)
                    work = self._socket(zmq.DEALER, self._work_address())
                    greeted = False
        except zmq.ContextTerminated:
            if not self.stop.is_set():
                raise
        finally:
            work.close()
            out.close()

    def _ask(self, work: zmq.Socket[Any], credit: int, reset: bool = False) -> None:
        if credit > 0:
            ready = wire.Ready(worker=self.name, role=self.role, credit=credit, reset=reset)
            wire.send_message(work, ready)

    def _work_address(self) -> str:
        raise NotImplementedError

    def _handle(self, message: wire.Message, work: zmq.Socket[Any], out: zmq.Socket[Any]) -> int:
        """Process one unit (and any it gathered); how many units it consumed."""
        raise NotImplementedError


class SegmentWorker(_Worker):
    """Framesets in, one CellBatch per field out (with its cell count, zero included).

    Each field is segmented within a time budget of `unit_budget_s` (budget.py): past it the field
    fails as `over_budget`, and a stop (SIGTERM) mid-field ends the work at the next step, leaving
    the field to be re-dispatched.
    """

    role: wire.Role = "segment"

    def __init__(
        self, *args: Any, segmenter: Segmenter, unit_budget_s: float = 5.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.segmenter = segmenter
        self.unit_budget_s = unit_budget_s

    def _work_address(self) -> str:
        return self.endpoints.segment

    def _handle(self, message: wire.Message, work: zmq.Socket[Any], out: zmq.Socket[Any]) -> int:
        if not isinstance(message, wire.FrameSetMessage):
            log.warning("%s: ignored an unexpected %s message", self.name, type(message).__name__)
            return 1
        frameset = message.frameset
        self._in_flight = ((frameset.sample_id, frameset.fov),)
        try:
            with budget.within(self.unit_budget_s, self.stop):
                cells = self.segmenter(frameset)
        except WorkStopped:
            log.warning("%s: stopped during field %d", self.name, frameset.fov)
            self._in_flight = ()
            return 0
        except Exception as exc:  # one bad unit fails its field, never the worker
            if not isinstance(exc, (LeukoscopeError, ValueError)):
                log.error("%s: segmentation of field %d crashed: %r", self.name, frameset.fov, exc)
            failure = wire.FieldFailed(
                sample_id=frameset.sample_id,
                fov=frameset.fov,
                reason=failure_reason(exc)[:4000],
                stage="segment",
                worker=self.name,
                ticket=message.ticket,
            )
            wire.send_message(out, failure)
        else:
            focus, notes = field_quality_of(cells)
            batch = wire.CellBatch(
                sample_id=frameset.sample_id,
                fov=frameset.fov,
                cell_count=len(cells),
                cells=tuple(cells),
                modalities=frameset.modalities,
                worker=self.name,
                t_available_s=message.t_available_s,
                ticket=message.ticket,
                thumbnails=tuple(thumbnail(c.crops) for c in cells),
                focus=focus,
                quality_notes=notes,
            )
            wire.send_message(out, batch)
        self.processed += 1
        self._in_flight = ()
        return 1


class ClassifyWorker(_Worker):
    """Cell batches in, results out; micro-batches up to `batch_size` cells or `batch_wait_ms`."""

    role: wire.Role = "classify"
    prefetch = 8  # fields of about 10 cells: enough queued to fill a micro-batch

    def __init__(
        self,
        *args: Any,
        classify: HeadClassifier,
        modalities: tuple[Modality, ...],
        batch_size: int,
        batch_wait_ms: float,
        min_probability: float,
        max_disagreement: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.classify = classify
        self.modalities = modalities
        self.batch_size = batch_size
        self.batch_wait_ms = batch_wait_ms
        self.min_probability = min_probability
        self.max_disagreement = max_disagreement

    @classmethod
    def from_config(
        cls,
        context: zmq.Context[Any],
        endpoints: Endpoints,
        stop: threading.Event,
        config: PipelineConfig,
        *,
        classify: HeadClassifier,
        modalities: tuple[Modality, ...],
        keys: CurveKeys | None = None,
    ) -> ClassifyWorker:
        """A classify worker with the pipeline settings' batching and review thresholds."""
        return cls(
            context,
            endpoints,
            stop,
            keys=keys,
            classify=classify,
            modalities=modalities,
            batch_size=config.batch_size,
            batch_wait_ms=config.batch_wait_ms,
            min_probability=config.min_probability,
            max_disagreement=config.max_disagreement,
        )

    def _work_address(self) -> str:
        return self.endpoints.classify

    def _gather(
        self, first: wire.CellBatch, work: zmq.Socket[Any]
    ) -> tuple[list[wire.CellBatch], int]:
        """More cell batches already queued, up to the micro-batch; (batches, units consumed)."""
        batches = [first]
        consumed = 1
        cells = len(first.cells)
        deadline = time.monotonic() + self.batch_wait_ms / 1000.0
        while cells < self.batch_size:
            left_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            try:
                message = wire.recv_message(work, left_ms)
            except WireError as exc:
                log.warning("%s: rejected a malformed message: %s", self.name, exc)
                consumed += 1
                continue
            if message is None:
                break
            consumed += 1
            if isinstance(message, wire.CellBatch):
                batches.append(message)
                cells += len(message.cells)
        return batches, consumed

    def _fail(self, out: zmq.Socket[Any], batch: wire.CellBatch, reason: str) -> None:
        failure = wire.FieldFailed(
            sample_id=batch.sample_id,
            fov=batch.fov,
            reason=reason[:4000],
            stage="classify",
            worker=self.name,
            ticket=batch.ticket,
        )
        wire.send_message(out, failure)

    def _model_input(self, batch: wire.CellBatch) -> np.ndarray:
        missing = [m.value for m in self.modalities if m not in batch.modalities]
        if missing:
            raise WireError(f"cells of field {batch.fov} lack modalities {missing}")
        order = [batch.modalities.index(m) for m in self.modalities]
        return np.stack([cell.crops[order] for cell in batch.cells])

    def _handle(self, message: wire.Message, work: zmq.Socket[Any], out: zmq.Socket[Any]) -> int:
        if not isinstance(message, wire.CellBatch):
            log.warning("%s: ignored an unexpected %s message", self.name, type(message).__name__)
            return 1
        gathered, consumed = self._gather(message, work)
        batches = [b for b in gathered if b.cells]
        if not batches:
            return consumed
        self._in_flight = tuple((b.sample_id, b.fov) for b in batches)
        inputs: list[np.ndarray] = []
        usable: list[wire.CellBatch] = []
        for batch in batches:
            try:
                inputs.append(self._model_input(batch))
                usable.append(batch)
            except WireError as exc:
                self._fail(out, batch, f"classification failed: {exc}")
        if usable:
            try:
                output = self.classify(np.concatenate(inputs))
                heads, unknown = output if isinstance(output, tuple) else (output, None)
            except Exception as exc:  # one bad micro-batch fails its fields, never the worker
                log.error("%s: classification crashed: %r", self.name, exc)
                for batch in usable:
                    self._fail(out, batch, f"classification failed: {type(exc).__name__}: {exc}")
                self._in_flight = ()
                return consumed
            cells = [cell for batch in usable for cell in batch.cells]
            reasons = unknown if unknown is not None else [""] * len(cells)
            results = cell_results(
                cells,
                heads,
                reasons,
                min_probability=self.min_probability,
                max_disagreement=self.max_disagreement,
                classes=getattr(self.classify, "classes", CELL_CLASSES),  # the model's, in order
            )
            tickets = tuple((b.sample_id, b.fov, b.ticket) for b in usable)
            answer = wire.ResultBatch(results=results, worker=self.name, tickets=tickets)
            wire.send_message(out, answer)
            self.processed += len(results)
        self._in_flight = ()
        return consumed
