"""The central stage: pulls fields from the source, hands out work, collects results, counts.

It binds every endpoint. Work goes out on two ROUTER sockets (framesets to segment workers, cell
batches to classify workers), only against the credit each worker asked for with `ready`, so a
stalled or dead worker is never handed more; everything workers produce comes back on one PULL
socket. Because it hands out all work, it knows what is outstanding per field: work not answered
within the worker timeout is sent again to another worker, duplicates are dropped by cell key (the
ledger), and after `max_attempts` a field is failed with the reason. Counts, store and live summaries follow
from the ledger, so the live table and the final report use one counting implementation.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from leukoscope.config import PipelineConfig
from leukoscope.errors import PipelineError, StorageError, WireError
from leukoscope.imaging import to_unit_float
from leukoscope.instrument import storage
from leukoscope.pipeline import wire
from leukoscope.pipeline.counts import stop_decision, summarize
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.ledger import SampleLedger
from leukoscope.pipeline.security import CurveKeys, secure_server
from leukoscope.pipeline.store import ResultStore, png_thumbnail
from leukoscope.types import CellKey, SampleStatus, SampleSummary

log = logging.getLogger(__name__)

POLL_MS = 20
SUMMARY_INTERVAL_S = 0.2
WORKER_GONE_S = 5.0
REPLAY_INTERVAL_S = 1.0  # final summaries are re-published this often, for late subscribers
REPLAY_LAST = 16
MAX_CREDIT = 64  # most units one worker may hold asked-for: a black hole cannot starve a sample

SummaryCallback = Callable[[SampleSummary, Mapping[str, "WorkerInfo"]], None]


@dataclass
class WorkerInfo:
    """A worker the aggregator has heard from."""

    role: str
    host: str = ""
    pid: int = 0
    last_seen_s: float = 0.0
    processed: int = 0


@dataclass
class _Unit:
    """One piece of handed-out work and its delivery state."""

    sample_id: str
    fov: int
    message: wire.Message
    sent_s: float | None = None
    attempts: int = 0
    tickets: dict[str, str] = field(default_factory=dict)  # ticket of each dispatch -> worker
    holder: bytes | None = None  # work-socket identity of the worker it was last sent to
    avoid: set[bytes] = field(default_factory=set)  # workers that let it time out

    def answered_by(self, ticket: str, worker: str) -> bool:
        """True when `ticket` is one of this unit's dispatches, and it went to `worker`."""
        return bool(ticket) and self.tickets.get(ticket) == worker


@dataclass
class _SampleRun:
    ledger: SampleLedger
    started_s: float
    segment: dict[int, _Unit] = field(default_factory=dict)
    classify: dict[int, _Unit] = field(default_factory=dict)
    crops: dict[CellKey, np.ndarray] = field(default_factory=dict)
    available_s: dict[int, float] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    last_published_s: float = 0.0
    dirty: bool = True
    source: Path | None = None  # saved acquisition the fields can be re-read from
    retired: dict[str, str] = field(default_factory=dict)  # tickets of units done -> worker


def thumbnail(crops: np.ndarray) -> bytes:
    """The modalities of one cell side by side, as an 8-bit PNG (the report's gallery image)."""
    tiles = [to_unit_float(c) for c in crops]
    strip = np.concatenate([t if t.ndim == 2 else t.mean(axis=-1) for t in tiles], axis=1)
    return png_thumbnail((np.clip(strip, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


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
        max_attempts: int = 3,
        keys: CurveKeys | None = None,
        on_summary: SummaryCallback | None = None,
        live_also: str = "",
        acquisition_root: Path | None = None,
    ) -> None:
        self.store = store
        # where sources may point the aggregator to re-read fields (None: anywhere, for the
        # embedded source, which is this process)
        self.acquisition_root = None if acquisition_root is None else acquisition_root.resolve()
        self.run_id = run_id
        self.target_cells = target_cells
        self.max_in_flight = max_in_flight
        self.worker_timeout_s = worker_timeout_s
        self.max_attempts = max_attempts
        self.on_summary = on_summary
        self.samples: dict[str, _SampleRun] = {}
        self.finished: dict[str, SampleSummary] = {}
        self.workers: dict[str, WorkerInfo] = {}
        self.rejected = 0
        self._last_replay_s = 0.0
        self._outbox: dict[str, deque[_Unit]] = {"segment": deque(), "classify": deque()}
        self._sockets: list[zmq.Socket[Any]] = []
        self._credits: dict[str, dict[bytes, int]] = {"segment": {}, "classify": {}}
        self._identity_of: dict[str, bytes] = {}  # worker name -> its work-socket identity
        self._name_of: dict[bytes, str] = {}  # work-socket identity -> the name it gave
        self.forged = 0  # answers dropped: no such dispatch, or not to the worker that answered
        try:
            self.ingest = self._bind(context, zmq.PULL, endpoints.ingest, keys, high_water_mark)
            self.to_segment = self._bind(context, zmq.ROUTER, endpoints.segment, keys, 0)
            self.to_classify = self._bind(context, zmq.ROUTER, endpoints.classify, keys, 0)
            self.results = self._bind(context, zmq.PULL, endpoints.results, keys, 0)
            self.live = self._bind(context, zmq.PUB, endpoints.live, keys, 1000)
        except BaseException:
            self.close()  # sockets left open would keep the context from ever terminating
            raise
        if live_also:
            try:
                self.live.bind(live_also)
            except zmq.ZMQError as exc:
                log.warning("live summaries not published on %s: %s", live_also, exc)

    @classmethod
    def from_config(
        cls,
        context: zmq.Context[Any],
        endpoints: Endpoints,
        store: ResultStore,
        config: PipelineConfig,
        *,
        run_id: str,
        keys: CurveKeys | None = None,
        on_summary: SummaryCallback | None = None,
        live_also: str = "",
        acquisition_root: Path | None = None,
    ) -> Aggregator:
        """An aggregator with the pipeline settings' bounds and timeouts."""
        return cls(
            context,
            endpoints,
            store,
            run_id=run_id,
            target_cells=config.target_cells,
            max_in_flight=config.high_water_mark,
            high_water_mark=config.high_water_mark,
            worker_timeout_s=config.worker_timeout_s,
            keys=keys,
            on_summary=on_summary,
            live_also=live_also,
            acquisition_root=acquisition_root,
        )

    def _bind(
        self,
        context: zmq.Context[Any],
        kind: int,
        address: str,
        keys: CurveKeys | None,
        hwm: int,
    ) -> zmq.Socket[Any]:
        sock = context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME_BYTES)  # a bigger frame: peer disconnected
        if kind == zmq.ROUTER:
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a vanished worker raises, not drops
        else:
            sock.setsockopt(zmq.SNDHWM if kind == zmq.PUB else zmq.RCVHWM, hwm)
        self._sockets.append(sock)
        secure_server(sock, keys)
        try:
            sock.bind(address)
        except zmq.ZMQError as exc:
            raise PipelineError(f"cannot listen on {address}: {exc.strerror}") from None
        return sock

    def close(self) -> None:
        """Close every socket."""
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    # -- the loop ---------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Fields entered but not resolved, over all running samples."""
        return sum(
            1 for run in self.samples.values() for s in run.ledger.fields.values() if not s.resolved
        )

    def step(self) -> None:
        """One round: take new fields if there is room, read what came back, send, retry, publish."""
        if self.in_flight < self.max_in_flight:
            self._receive(self.ingest, self._on_ingest)
        self._receive(self.results, self._on_result, budget=256)
        for stage, sock in (("segment", self.to_segment), ("classify", self.to_classify)):
            self._receive_credit(stage, sock)
        self._flush_outbox()
        self._retry_overdue()
        self._publish()

    def run_until(self, done: Callable[[], bool], timeout_s: float | None = None) -> None:
        """Step until `done()`; PipelineError if `timeout_s` passes first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not done():
            self.step()
            if deadline is not None and time.monotonic() > deadline:
                raise PipelineError(f"pipeline did not finish within {timeout_s:.0f} s")

    def _receive(
        self, sock: zmq.Socket[Any], handle: Callable[[wire.Message], None], budget: int = 1
    ) -> None:
        timeout = POLL_MS
        for _ in range(budget):
            try:
                message = wire.recv_message(sock, timeout)
            except WireError as exc:
                self.rejected += 1
                log.warning("rejected a malformed message: %s", exc)
                continue
            if message is None:
                return
            timeout = 0
            handle(message)

    def _receive_credit(self, stage: str, sock: zmq.Socket[Any]) -> None:
        while True:
            try:
                routed = wire.recv_routed(sock, 0)
            except WireError as exc:
                self.rejected += 1
                log.warning("rejected a malformed message on the %s socket: %s", stage, exc)
                continue
            if routed is None:
                return
            identity, message = routed
            if not isinstance(message, wire.Ready) or message.role != stage:
                self.rejected += 1
                log.warning("ignored a %s message on the %s socket", type(message).__name__, stage)
                continue
            credits = self._credits[stage]
            base = 0 if message.reset else credits.get(identity, 0)
            credits[identity] = min(base + message.credit, MAX_CREDIT)
            known = self._name_of.get(identity)
            if known is not None and known != message.worker:
                self._identity_of.pop(known, None)
            self._identity_of[message.worker] = identity
            self._name_of[identity] = message.worker
            self.workers.setdefault(
                message.worker, WorkerInfo(role=stage)
            ).last_seen_s = time.time()

    def _running(self, sample_id: str, what: str) -> _SampleRun | None:
        """The running sample a message is for; None (logged unless it just finished) otherwise."""
        run = self.samples.get(sample_id)
        if run is None and sample_id not in self.finished:
            self.rejected += 1
            log.warning("ignored %s for unknown sample %r", what, sample_id)
        return run

    # -- ingest: the source's stream ------------------------------------------------------------

    def _on_ingest(self, message: wire.Message) -> None:
        if isinstance(message, wire.SampleStart):
            self._start_sample(message)
            return
        sample_id = _sample_of(message)
        run = self._running(sample_id, type(message).__name__)
        if run is None:
            return
        fov = message.frameset.fov if isinstance(message, wire.FrameSetMessage) else -1
        fov = getattr(message, "fov", fov)
        total = run.ledger.fields_total
        if total is not None and fov >= total:
            self.rejected += 1
            log.warning("ignored field %d of %s: the sample has %d fields", fov, sample_id, total)
            return
        if isinstance(message, wire.FrameSetMessage):
            if run.ledger.add_field(fov):
                run.available_s[fov] = message.t_available_s or time.time()
                self._queue("segment", run.segment, _Unit(sample_id, fov, message))
        elif isinstance(message, wire.FieldFailed):
            self._fail(run, message.fov, message.reason)
        elif isinstance(message, wire.SampleEnd):
            self._end_sample(run, message.fields_total)
            self._reload_missing(run)
        else:
            self.rejected += 1
            log.warning("ignored a %s message on the ingest socket", type(message).__name__)
        self._check_finished(sample_id)

    def _end_sample(self, run: _SampleRun, claimed: int) -> None:
        """The source says how many fields there were; believe it only as far as fields arrived
        (or lie in the saved acquisition): one short message must not create 200,000 failed
        fields. A total from the sample's start is held to the same bound."""
        sample_id = run.ledger.sample_id
        seen = max(run.ledger.fields, default=-1) + 1
        if run.source is not None:
            with suppress(StorageError):
                on_disk = storage.list_fields(run.source)
                seen = max(seen, len(on_disk) + storage.failed_field_count(run.source))
        first = run.ledger.fields_total
        total = min(claimed if first is None else first, seen)
        if total < (claimed if first is None else first):
            self.rejected += 1
            log.warning(
                "sample %s: %d fields announced, %d arrived or are saved; the sample has %d",
                sample_id, claimed if first is None else first, seen, total,
            )  # fmt: skip
        if first is None or total < first:
            run.ledger.end(total)
            self.store.set_fields_total(self.run_id, sample_id, total, replace=True)
            run.dirty = True

    def _start_sample(self, message: wire.SampleStart) -> None:
        sample_id = message.sample_id
        if sample_id in self.samples or sample_id in self.finished:
            return
        ledger = SampleLedger(
            sample_id, target_cells=self.target_cells, simulated=message.simulated
        )
        if message.fields_total is not None:
            ledger.fields_total = message.fields_total
        source = self._readable(message.acquisition, sample_id)
        self.store.start_sample(
            self.run_id,
            sample_id,
            target_cells=self.target_cells,
            fields_total=message.fields_total,
            source="" if source is None else str(source),
            simulated=message.simulated,
        )
        self.samples[sample_id] = _SampleRun(ledger=ledger, started_s=time.time(), source=source)

    def _readable(self, acquisition: str, sample_id: str) -> Path | None:
        """The saved-acquisition folder a source names, if this aggregator may read it: with an
        `acquisition_root`, only a folder inside it (a client never chooses what the server reads)."""
        if not acquisition:
            return None
        path = Path(acquisition)
        if self.acquisition_root is None:
            return path
        resolved = (self.acquisition_root / path).resolve()  # an absolute path stays itself
        if not resolved.is_relative_to(self.acquisition_root):
            self.rejected += 1
            log.warning(
                "sample %s: %s is outside the data folder %s; lost fields will not be re-read",
                sample_id, acquisition, self.acquisition_root,
            )  # fmt: skip
            return None
        return resolved

    # -- recovery: a restarted aggregator, lost messages ----------------------------------------

    def resume(self) -> list[str]:
        """Take up the samples of this run that the store says are still running; their ids."""
        resumed = []
        for row in self.store.samples(self.run_id):
            sample_id = row["sample_id"]
            if row["status"] != SampleStatus.RUNNING.value or sample_id in self.samples:
                continue
            ledger = self.store.ledger(self.run_id, sample_id)
            ledger.target_cells = self.target_cells
            source = self._readable(row["source"] or "", sample_id)
            run = _SampleRun(ledger=ledger, started_s=float(row["started_s"]), source=source)
            self.samples[sample_id] = run
            self._reload_missing(run)
            self._check_finished(sample_id)
            resumed.append(sample_id)
            log.info("resumed sample %s from the store", sample_id)
        return resumed

    def _reload_missing(self, run: _SampleRun) -> None:
        """Queue, from the saved acquisition, every field that never reached this aggregator."""
        if run.source is None:
            return
        total = run.ledger.fields_total
        fovs = range(total) if total is not None else storage.list_fields(run.source)
        for fov in fovs:
            state = run.ledger.fields.get(fov)
            if (state is not None and (state.resolved or state.entered)) or fov in run.segment:
                continue
            try:
                frameset = storage.read_field(run.source, fov)
            except StorageError as exc:
                if total is not None:
                    self._fail(run, fov, str(exc))
                continue
            run.ledger.add_field(fov)
            run.available_s[fov] = time.time()
            message = wire.FrameSetMessage(frameset, t_available_s=time.time())
            self._queue("segment", run.segment, _Unit(run.ledger.sample_id, fov, message))

    # -- results: what workers send back ----------------------------------------------------------

    def _on_result(self, message: wire.Message) -> None:
        if isinstance(message, (wire.Hello, wire.Heartbeat)):
            self._seen_worker(message)
            return
        if isinstance(message, wire.ResultBatch):
            for sample_id in {r.key.sample_id for r in message.results}:
                self._on_results(sample_id, message)
            return
        sample_id = _sample_of(message)
        run = self._running(sample_id, type(message).__name__)
        if run is None:
            return
        fov = getattr(message, "fov", -1)
        unsolicited = fov not in run.segment and fov not in run.classify
        if isinstance(message, (wire.CellBatch, wire.FieldFailed)) and unsolicited:
            self.rejected += 1
            log.warning(
                "ignored %s for field %d: no work is out for it", type(message).__name__, fov
            )
        elif isinstance(message, (wire.CellBatch, wire.FieldFailed)) and not self._authentic(
            run, message
        ):
            pass  # logged and counted by _authentic
        elif isinstance(message, wire.CellBatch):
            self._on_cells(run, message)
        elif isinstance(message, wire.FieldFailed):
            self._fail(run, message.fov, message.reason)
        else:
            self.rejected += 1
            log.warning("ignored a %s message on the results socket", type(message).__name__)
        self._check_finished(sample_id)

    def _authentic(self, run: _SampleRun, message: wire.CellBatch | wire.FieldFailed) -> bool:
        """True when `message` answers a dispatch of the field's unit to the worker that sent it.

        Segmentation answers a segment unit; a failure answers whichever unit is out (its stage).
        Anything else (a guessed ticket, another worker's ticket, a stale or absent one) is
        forged or misdirected: logged and dropped, so it can never change a count.
        """
        units = [run.segment.get(message.fov)]
        if isinstance(message, wire.FieldFailed):
            units.append(run.classify.get(message.fov))
        if any(u is not None and u.answered_by(message.ticket, message.worker) for u in units):
            return True
        if message.ticket and run.retired.get(message.ticket) == message.worker:
            return False  # a late duplicate of work already settled: nothing to count
        self.forged += 1
        self.rejected += 1
        log.warning(
            "dropped %s for %s field %d from %r: it answers no work dispatched to that worker",
            type(message).__name__, run.ledger.sample_id, message.fov, message.worker,
        )  # fmt: skip
        return False

    def _seen_worker(self, message: wire.Hello | wire.Heartbeat) -> None:
        info = self.workers.setdefault(message.worker, WorkerInfo(role=message.role))
        info.last_seen_s = time.time()
        if isinstance(message, wire.Hello):
            info.host, info.pid = message.host, message.pid
            log.info("worker %s (%s) connected from %s", message.worker, message.role, message.host)
        else:
            info.processed = message.processed

    def _on_cells(self, run: _SampleRun, batch: wire.CellBatch) -> None:
        fov = batch.fov
        if len(batch.cells) != batch.cell_count or any(
            c.key != CellKey(batch.sample_id, fov, i) for i, c in enumerate(batch.cells)
        ):
            self.rejected += 1
            log.warning("rejected cells of field %d: keys do not match the count", fov)
            return
        state = run.ledger.fields.get(fov)
        if state is not None and state.segmented:
            if state.cell_count != batch.cell_count:
                self.rejected += 1
                log.warning("field %d: segmented again with a different cell count", fov)
                return
        else:
            run.ledger.set_cell_count(fov, batch.cell_count)
            self.store.add_field(self.run_id, batch.sample_id, fov, batch.cell_count)
            run.dirty = True
        _retire(run, "segment", fov)
        known = run.ledger.fields[fov].results
        missing = tuple(c for c in batch.cells if c.key.cell_index not in known)
        if not missing:
            self._field_resolved(run, fov)
            return
        if fov in run.classify:
            return  # a duplicate answer from a re-dispatched or slow worker
        for cell in missing:
            run.crops[cell.key] = cell.crops
        work = dataclasses.replace(batch, cells=missing)
        self._queue("classify", run.classify, _Unit(batch.sample_id, fov, work))

    def _on_results(self, sample_id: str, batch: wire.ResultBatch) -> None:
        run = self._running(sample_id, "results")
        if run is None:
            return
        answered = {
            fov
            for sid, fov, ticket in batch.tickets
            if sid == sample_id
            and (unit := run.classify.get(fov)) is not None
            and unit.answered_by(ticket, batch.worker)
        }
        late = {
            fov
            for sid, fov, ticket in batch.tickets
            if sid == sample_id and ticket and run.retired.get(ticket) == batch.worker
        }
        claimed = {r.key.fov for r in batch.results if r.key.sample_id == sample_id}
        if claimed - answered - late:
            self.forged += 1
            self.rejected += 1
            log.warning(
                "dropped results for %s field(s) %s from %r: they answer no work dispatched to "
                "that worker", sample_id, sorted(claimed - answered - late)[:10], batch.worker,
            )  # fmt: skip
        mine = [r for r in batch.results if r.key.sample_id == sample_id and r.key.fov in answered]
        fresh = run.ledger.add_results(mine)
        if fresh:
            thumbs = {r.key: thumbnail(run.crops.pop(r.key)) for r in fresh if r.key in run.crops}
            self.store.add_results(self.run_id, fresh, thumbs)
            run.dirty = True
            for fov in {r.key.fov for r in fresh}:
                if run.ledger.fields[fov].resolved:
                    self._field_resolved(run, fov)
        self._check_finished(sample_id)

    def _field_resolved(self, run: _SampleRun, fov: int) -> None:
        _retire(run, "classify", fov)
        _retire(run, "segment", fov)
        if fov in run.available_s:
            run.latencies_s.append(time.time() - run.available_s.pop(fov))

    def _fail(self, run: _SampleRun, fov: int, reason: str) -> None:
        run.ledger.fail_field(fov, reason)
        _retire(run, "segment", fov)
        _retire(run, "classify", fov)
        run.available_s.pop(fov, None)
        self.store.add_field(
            self.run_id, run.ledger.sample_id, fov, None, failed=True, reason=reason
        )
        run.dirty = True
        log.warning("sample %s field %d failed: %s", run.ledger.sample_id, fov, reason)

    # -- dispatch and retry -----------------------------------------------------------------------

    def _queue(self, stage: str, pending: dict[int, _Unit], unit: _Unit) -> None:
        pending[unit.fov] = unit
        self._outbox[stage].append(unit)

    def _next_worker(self, stage: str, avoid: set[bytes] | None = None) -> bytes | None:
        """The live worker with the most credit for `stage` (None if none has any), preferring
        workers not in `avoid` (those that let this unit time out before)."""
        now = time.time()
        credits = self._credits[stage]
        for name, identity in list(self._identity_of.items()):
            info = self.workers.get(name)
            if identity in credits and info is not None and now - info.last_seen_s > WORKER_GONE_S:
                log.warning("worker %s went silent; no more work for it", name)
                del credits[identity]
        ranked = sorted(credits.items(), key=lambda item: (item[0] in (avoid or ()), -item[1]))
        best = next((identity for identity, credit in ranked if credit > 0), None)
        return best

    def _flush_outbox(self) -> None:
        for stage, sock in (("segment", self.to_segment), ("classify", self.to_classify)):
            outbox = self._outbox[stage]
            while outbox:
                unit = outbox[0]
                run = self.samples.get(unit.sample_id)
                pending = None if run is None else getattr(run, stage)
                if pending is None or pending.get(unit.fov) is not unit:
                    outbox.popleft()  # resolved, failed or finished meanwhile
                    continue
                identity = self._next_worker(stage, unit.avoid)
                if identity is None:
                    break  # no worker has asked for work: back-pressure
                ticket = secrets.token_hex(16)  # unguessable: only the worker handed it knows it
                message = dataclasses.replace(unit.message, ticket=ticket)
                try:
                    wire.send_message(sock, message, flags=zmq.NOBLOCK, route=identity)
                except zmq.ZMQError:  # the worker disconnected (or its queue is full)
                    del self._credits[stage][identity]
                    continue
                unit.tickets[ticket] = self._name_of.get(identity, "")
                unit.holder = identity
                self._credits[stage][identity] -= 1
                unit.sent_s = time.monotonic()
                unit.attempts += 1
                outbox.popleft()

    def _retry_overdue(self) -> None:
        now = time.monotonic()
        for run in list(self.samples.values()):
            for stage in ("segment", "classify"):
                pending: dict[int, _Unit] = getattr(run, stage)
                for unit in list(pending.values()):
                    if unit.sent_s is None or now - unit.sent_s < self.worker_timeout_s:
                        continue
                    if unit.attempts >= self.max_attempts:
                        reason = f"no {stage} result after {unit.attempts} attempts"
                        self._fail(run, unit.fov, reason)
                        self._check_finished(unit.sample_id)
                        continue
                    log.warning("re-dispatching %s of %s field %d", stage, unit.sample_id, unit.fov)
                    if unit.holder is not None:  # it sat on the unit: stalled, or a black hole
                        unit.avoid.add(unit.holder)
                        self._credits[stage][unit.holder] = 0
                    unit.sent_s = None
                    self._outbox[stage].append(unit)

    # -- completion and publishing ----------------------------------------------------------------

    def _summary(self, run: _SampleRun) -> SampleSummary:
        latencies = np.asarray(run.latencies_s or [0.0])
        timings = {
            "latency_p50_s": float(np.percentile(latencies, 50)),
            "latency_p95_s": float(np.percentile(latencies, 95)),
        }
        return summarize(run.ledger, elapsed_s=time.time() - run.started_s, timings=timings)

    def _check_finished(self, sample_id: str) -> None:
        run = self.samples.get(sample_id)
        if run is None or not stop_decision(run.ledger).finished:
            return
        summary = self._summary(run)
        self.store.finish_sample(self.run_id, summary)
        del self.samples[sample_id]
        self.finished[sample_id] = summary
        self._emit(summary)
        log.info("sample %s %s: %s", sample_id, summary.status.value, summary.status_reason)

    def _publish(self) -> None:
        now = time.time()
        if now - self._last_replay_s >= REPLAY_INTERVAL_S:
            self._last_replay_s = now
            for summary in list(self.finished.values())[-REPLAY_LAST:]:
                message = wire.SummaryMessage(summary=summary, sent_s=now)
                wire.send_message(self.live, message, flags=zmq.NOBLOCK)
        for run in self.samples.values():
            if run.dirty and now - run.last_published_s >= SUMMARY_INTERVAL_S:
                run.dirty = False
                run.last_published_s = now
                self._emit(self._summary(run))

    def _emit(self, summary: SampleSummary) -> None:
        live = [
            name for name, w in self.workers.items() if time.time() - w.last_seen_s < WORKER_GONE_S
        ]
        message = wire.SummaryMessage(summary=summary, sent_s=time.time(), workers=tuple(live))
        wire.send_message(self.live, message, flags=zmq.NOBLOCK)
        if self.on_summary is not None:
            self.on_summary(summary, self.workers)

    def abort(self, sample_id: str, reason: str) -> SampleSummary | None:
        """Finish a running sample as incomplete (e.g. Ctrl-C); its summary."""
        run = self.samples.pop(sample_id, None)
        if run is None:
            return self.finished.get(sample_id)
        summary = summarize(run.ledger, aborted=reason, elapsed_s=time.time() - run.started_s)
        self.store.finish_sample(self.run_id, summary)
        self.finished[sample_id] = summary
        self._emit(summary)
        return summary


def _retire(run: _SampleRun, stage: str, fov: int) -> None:
    """Take a unit off the pending work; its tickets stay known, so late answers are not forged."""
    unit = getattr(run, stage).pop(fov, None)
    if unit is not None:
        run.retired.update(unit.tickets)


def _sample_of(message: wire.Message) -> str:
    if isinstance(message, wire.FrameSetMessage):
        return message.frameset.sample_id
    return str(getattr(message, "sample_id", ""))


__all__ = ["Aggregator", "SampleStatus", "WorkerInfo", "thumbnail"]
