"""Who gets which unit of work, and when it is sent again: socket-free, on a clock handed in.

Workers ask for work with a credit (`ready`); the dispatcher hands a queued unit only to a live
worker with credit left, preferring workers that did not let this unit time out before. Each
dispatch gets an unguessable ticket recorded against the *principal* it went to (the worker's
authenticated CurveZMQ identity, or its name on a loopback setup without keys), so an answer can be
checked against the exact unit, dispatch and sender. A unit not answered within the worker timeout,
or given up by its worker past its time budget (`give_up`), is queued again for another worker;
after `max_attempts` dispatches (two by default: a field that timed out or ran over budget on two
live workers is not sent to a third) it is handed back to the caller to fail its field. A dispatch
to a worker that fell silent holding the unit (killed, crashed) is not counted against the field,
up to MAX_LOST of them.
The aggregator feeds it what arrives and sends what it hands out; the ledger decides what counts.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from leukoscope.pipeline import wire

log = logging.getLogger(__name__)

Stage = Literal["segment", "classify"]
STAGES: tuple[Stage, ...] = ("segment", "classify")
MAX_CREDIT = 64  # most units one worker may hold asked-for: a black hole cannot starve a sample
MAX_LOST = 4  # dispatches to workers that died holding a unit, before its field fails anyway
HEARTBEAT_GRACE_S = 1.5  # a worker heard from this long after a dispatch was alive while holding it
WORKER_GONE_S = 5.0  # a worker not heard from for this long is handed no more work

Work = wire.FrameSetMessage | wire.CellBatch
Clock = Callable[[], float]
Send = Callable[[bytes, "Unit", str], bool]
"""Sends a unit to a worker's work-socket identity with a ticket; False if it could not."""


@dataclass
class WorkerInfo:
    """A worker the aggregator has heard from (`last_seen_s` on the dispatcher's clock)."""

    role: str
    host: str = ""
    pid: int = 0
    last_seen_s: float = 0.0
    processed: int = 0


@dataclass
class Unit:
    """One piece of handed-out work and its delivery state."""

    stage: Stage
    sample_id: str
    fov: int
    message: Work
    sent_s: float | None = None
    attempts: int = 0
    lost: int = 0  # dispatches to workers that fell silent holding it (not the field's fault)
    tickets: dict[str, str] = field(default_factory=dict)  # ticket of each dispatch -> principal
    holder: bytes | None = None  # work-socket identity of the worker it was last sent to
    avoid: set[bytes] = field(default_factory=set)  # workers that let it time out

    def answered_by(self, ticket: str, principal: str) -> bool:
        """True when `ticket` is one of this unit's dispatches, and it went to `principal`."""
        return bool(ticket) and self.tickets.get(ticket) == principal


class Dispatcher:
    """Queue, credits, tickets, overdue work and re-dispatch for every stage and sample."""

    def __init__(
        self,
        clock: Clock,
        *,
        worker_timeout_s: float = 10.0,
        max_attempts: int = 2,
        max_credit: int = MAX_CREDIT,
        worker_gone_s: float = WORKER_GONE_S,
        new_ticket: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self.clock = clock
        self.worker_timeout_s = worker_timeout_s
        self.max_attempts = max_attempts
        self.max_credit = max_credit
        self.worker_gone_s = worker_gone_s
        self.new_ticket = new_ticket
        self.workers: dict[str, WorkerInfo] = {}
        self._pending: dict[Stage, dict[tuple[str, int], Unit]] = {s: {} for s in STAGES}
        self._outbox: dict[Stage, deque[Unit]] = {s: deque() for s in STAGES}
        self._credits: dict[Stage, dict[bytes, int]] = {s: {} for s in STAGES}
        self._identity_of: dict[str, bytes] = {}  # worker name -> its work-socket identity
        self._name_of: dict[bytes, str] = {}  # work-socket identity -> the name it gave
        self._principal_of: dict[bytes, str] = {}  # work-socket identity -> who it is
        self._retired: dict[str, dict[str, str]] = {}  # sample -> tickets of settled units

    # -- workers ----------------------------------------------------------------------------------

    def ready(
        self, stage: Stage, identity: bytes, worker: str, principal: str, credit: int, reset: bool
    ) -> None:
        """A worker asks for `credit` more units (exactly `credit` with `reset`), capped."""
        credits = self._credits[stage]
        base = 0 if reset else credits.get(identity, 0)
        credits[identity] = min(base + credit, self.max_credit)
        known = self._name_of.get(identity)
        if known is not None and known != worker:
            self._identity_of.pop(known, None)
        self._identity_of[worker] = identity
        self._name_of[identity] = worker
        self._principal_of[identity] = principal
        self.seen(worker, stage)

    def seen(self, worker: str, role: str) -> WorkerInfo:
        """A worker was heard from now; its record."""
        info = self.workers.setdefault(worker, WorkerInfo(role=role))
        info.last_seen_s = self.clock()
        return info

    def live_workers(self) -> list[str]:
        """Names of the workers heard from recently."""
        now = self.clock()
        return [n for n, w in self.workers.items() if now - w.last_seen_s < self.worker_gone_s]

    # -- units ------------------------------------------------------------------------------------

    def queue(self, unit: Unit) -> None:
        """Make `unit` the pending work of its field and stage, and queue it for dispatch."""
        self._pending[unit.stage][(unit.sample_id, unit.fov)] = unit
        self._outbox[unit.stage].append(unit)

    def pending(self, stage: Stage, sample_id: str, fov: int) -> Unit | None:
        """The unit out (or queued) for a field at `stage`."""
        return self._pending[stage].get((sample_id, fov))

    def busy(self, sample_id: str, fov: int) -> bool:
        """True when any stage has work out (or queued) for the field."""
        return any((sample_id, fov) in self._pending[s] for s in STAGES)

    def retire(self, sample_id: str, fov: int, *stages: Stage) -> None:
        """Take a field's units off the pending work (all stages by default); their tickets stay
        known, so a late answer is recognised as late, not as forged."""
        for stage in stages or STAGES:
            unit = self._pending[stage].pop((sample_id, fov), None)
            if unit is not None:
                self._retired.setdefault(sample_id, {}).update(unit.tickets)

    def forget(self, sample_id: str) -> None:
        """The sample is finished: drop its pending work and settled tickets."""
        for stage in STAGES:
            for key in [k for k in self._pending[stage] if k[0] == sample_id]:
                del self._pending[stage][key]
        self._retired.pop(sample_id, None)

    def is_late(self, sample_id: str, ticket: str, principal: str) -> bool:
        """True when `ticket` was a dispatch to `principal` of a unit already settled."""
        return bool(ticket) and self._retired.get(sample_id, {}).get(ticket) == principal

    # -- dispatch and retry -----------------------------------------------------------------------

    def _next_worker(self, stage: Stage, avoid: set[bytes]) -> bytes | None:
        """The live worker with the most credit for `stage`, preferring those not in `avoid`."""
        now = self.clock()
        credits = self._credits[stage]
        for name, identity in list(self._identity_of.items()):
            info = self.workers.get(name)
            if (
                identity in credits
                and info is not None
                and now - info.last_seen_s > self.worker_gone_s
            ):
                log.warning("worker %s went silent; no more work for it", name)
                del credits[identity]
        ranked = sorted(credits.items(), key=lambda item: (item[0] in avoid, -item[1]))
        return next((identity for identity, credit in ranked if credit > 0), None)

    def dispatch(self, stage: Stage, send: Send) -> int:
        """Hand out queued units of `stage` while workers have credit; how many were sent."""
        outbox = self._outbox[stage]
        sent = 0
        while outbox:
            unit = outbox[0]
            if self._pending[stage].get((unit.sample_id, unit.fov)) is not unit:
                outbox.popleft()  # resolved, failed or finished meanwhile
                continue
            identity = self._next_worker(stage, unit.avoid)
            if identity is None:
                break  # no worker has asked for work: back-pressure
            ticket = self.new_ticket()
            if not send(identity, unit, ticket):  # the worker disconnected (or its queue is full)
                del self._credits[stage][identity]
                continue
            unit.tickets[ticket] = self._principal_of.get(identity, "")
            unit.holder = identity
            self._credits[stage][identity] -= 1
            unit.sent_s = self.clock()
            unit.attempts += 1
            outbox.popleft()
            sent += 1
        return sent

    def unit_of(self, sample_id: str, fov: int, ticket: str) -> Unit | None:
        """The pending unit of the field that `ticket` was a dispatch of."""
        for stage in STAGES:
            unit = self._pending[stage].get((sample_id, fov))
            if unit is not None and ticket in unit.tickets:
                return unit
        return None

    def name_of(self, identity: bytes | None) -> str:
        """The name a worker gave, by its work-socket identity ('' when unknown)."""
        return "" if identity is None else self._name_of.get(identity, "")

    def give_up(self, unit: Unit) -> bool:
        """Its worker gave `unit` up (over its time budget): queue it again for another worker
        and True, unless it is out of attempts or no other live worker of its stage asks for
        work (False: the caller fails the field)."""
        if unit.attempts >= self.max_attempts:
            return False
        live = set(self.live_workers())
        others = [
            identity
            for identity in self._credits[unit.stage]
            if identity != unit.holder and self.name_of(identity) in live
        ]
        if not others:
            return False
        if unit.holder is not None:
            unit.avoid.add(unit.holder)
        unit.sent_s = None
        self._outbox[unit.stage].append(unit)
        return True

    def waiting(self, stage: Stage) -> bool:
        """True when units of `stage` wait for a worker's credit."""
        return bool(self._outbox[stage])

    def overdue(self) -> list[Unit]:
        """Queue again every unit not answered in time; the units out of attempts (to fail)."""
        now = self.clock()
        exhausted = []
        for stage in STAGES:
            for unit in list(self._pending[stage].values()):
                if unit.sent_s is None or now - unit.sent_s < self.worker_timeout_s:
                    continue
                if not self._alive_since(unit.holder, unit.sent_s) and unit.lost < MAX_LOST:
                    unit.attempts -= 1  # its worker died: the field gets another try
                    unit.lost += 1
                if unit.attempts >= self.max_attempts or unit.lost >= MAX_LOST:
                    exhausted.append(unit)
                    continue
                log.warning("re-dispatching %s of %s field %d", stage, unit.sample_id, unit.fov)
                if unit.holder is not None:  # it sat on the unit: stalled, or a black hole
                    unit.avoid.add(unit.holder)
                    self._credits[stage][unit.holder] = 0
                unit.sent_s = None
                self._outbox[stage].append(unit)
        return exhausted

    def _alive_since(self, identity: bytes | None, sent_s: float) -> bool:
        """The worker was heard from a heartbeat or more after it was sent the unit: it held the
        unit alive (stalled or slow) rather than dying with it."""
        info = self.workers.get(self.name_of(identity))
        return info is not None and info.last_seen_s >= sent_s + HEARTBEAT_GRACE_S

    def next_deadline(self) -> float | None:
        """When the earliest unit out becomes overdue (None when nothing is out)."""
        sent = [u.sent_s for s in STAGES for u in self._pending[s].values() if u.sent_s is not None]
        return min(sent) + self.worker_timeout_s if sent else None
