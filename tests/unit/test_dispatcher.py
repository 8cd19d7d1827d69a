"""Dispatch without sockets, on a fake clock: credit, tickets, overdue work, re-dispatch, gone
workers and late answers."""

from __future__ import annotations

import itertools

import numpy as np

from leukoscope.pipeline import wire
from leukoscope.pipeline.dispatcher import MAX_CREDIT, MAX_LOST, Dispatcher, Unit
from leukoscope.types import MODALITIES, FrameSet

A, B = b"identity-a", b"identity-b"


class FakeClock:
    """A clock the test moves by hand (named a fake: no real time passes)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def unit(fov: int, sample: str = "s") -> Unit:
    frame = np.zeros((8, 8), np.uint16)
    frameset = FrameSet(sample, fov, MODALITIES, (frame,) * 4, (0.0,) * 4, (1.0,) * 4, MODALITIES,
                        ((0.0, 0.0),) * 4, "d", 0.25)  # fmt: skip
    return Unit("segment", sample, fov, wire.FrameSetMessage(frameset))


class Outbox:
    """Records what the dispatcher sends; refuses identities listed in `gone`."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, int, str]] = []
        self.gone: set[bytes] = set()

    def __call__(self, identity: bytes, unit: Unit, ticket: str) -> bool:
        if identity in self.gone:
            return False
        self.sent.append((identity, unit.fov, ticket))
        return True


def dispatcher(clock: FakeClock, **kwargs: float) -> Dispatcher:
    counter = itertools.count()
    return Dispatcher(clock, new_ticket=lambda: f"t{next(counter)}", **kwargs)  # type: ignore[arg-type]


def test_nothing_is_sent_without_credit_and_credit_is_spent() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock)
    for fov in range(3):
        d.queue(unit(fov))
    assert d.dispatch("segment", out) == 0 and d.waiting("segment")
    d.ready("segment", A, "seg-a", "seg-a", credit=2, reset=False)
    assert d.dispatch("segment", out) == 2
    assert [fov for _, fov, _ in out.sent] == [0, 1]
    assert d.waiting("segment")  # the third waits for more credit
    d.ready("segment", A, "seg-a", "seg-a", credit=1, reset=False)
    assert d.dispatch("segment", out) == 1 and not d.waiting("segment")


def test_credit_is_capped_and_reset_replaces_it() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock)
    d.ready("segment", A, "hole", "hole", credit=1024, reset=True)
    for fov in range(MAX_CREDIT + 5):
        d.queue(unit(fov))
    assert d.dispatch("segment", out) == MAX_CREDIT
    d.ready("segment", A, "hole", "hole", credit=1, reset=True)
    assert d.dispatch("segment", out) == 1


def test_a_ticket_answers_only_its_unit_and_the_principal_it_went_to() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock)
    d.ready("segment", A, "seg-a", "key:host-a", credit=1, reset=False)
    d.queue(unit(0))
    d.dispatch("segment", out)
    (_, _, ticket), = out.sent  # fmt: skip
    sent = d.pending("segment", "s", 0)
    assert sent is not None
    assert sent.answered_by(ticket, "key:host-a")
    assert not sent.answered_by(ticket, "key:host-b")
    assert not sent.answered_by("guessed", "key:host-a")
    assert not sent.answered_by("", "")


def test_overdue_work_goes_to_another_worker_and_the_staller_gets_no_more() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock, worker_timeout_s=10.0)
    d.ready("segment", A, "seg-a", "seg-a", credit=5, reset=False)
    d.queue(unit(0))
    d.dispatch("segment", out)
    assert d.next_deadline() == 110.0
    clock.now = 109.0
    assert d.overdue() == [] and not d.waiting("segment")
    d.seen("seg-a", "segment")  # A's heartbeat: alive, sitting on the unit (a staller)
    d.ready("segment", B, "seg-b", "seg-b", credit=1, reset=False)
    clock.now = 110.5
    assert d.overdue() == []  # re-queued, not exhausted
    d.ready("segment", A, "seg-a", "seg-a", credit=0 + 1, reset=True)  # A is still alive, idle
    d.dispatch("segment", out)
    assert [identity for identity, _, _ in out.sent] == [A, B], "re-dispatched to the staller"
    first, second = (t for _, _, t in out.sent)
    sent = d.pending("segment", "s", 0)
    assert sent is not None and sent.attempts == 2
    assert sent.answered_by(first, "seg-a") and sent.answered_by(second, "seg-b")


def test_after_max_attempts_the_unit_is_handed_back_to_fail() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock, worker_timeout_s=1.0, max_attempts=2)
    d.queue(unit(0))
    for attempt in range(2):
        d.ready("segment", A, "seg-a", "seg-a", credit=1, reset=True)
        assert d.dispatch("segment", out) == 1, attempt
        clock.now += 1.5
        d.seen("seg-a", "segment")  # alive all along: the field, not the worker, is the problem
        exhausted = d.overdue()
    assert [u.fov for u in exhausted] == [0]


def test_a_worker_that_dies_holding_a_unit_does_not_use_up_its_field() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock, worker_timeout_s=1.0, max_attempts=2)
    d.queue(unit(0))
    for attempt in range(MAX_LOST - 1):  # each holder dies silently: re-dispatched, not failed
        d.ready("segment", A, f"seg-{attempt}", f"seg-{attempt}", credit=1, reset=True)
        assert d.dispatch("segment", out) == 1, attempt
        clock.now += 1.5
        assert d.overdue() == [], attempt
    d.ready("segment", A, "seg-last", "seg-last", credit=1, reset=True)
    assert d.dispatch("segment", out) == 1
    clock.now += 1.5  # but a field that kills every worker fails after MAX_LOST of them
    assert [u.fov for u in d.overdue()] == [0]
    d.retire("s", 0)
    assert d.next_deadline() is None and not d.busy("s", 0)


def test_a_silent_worker_gets_no_work_and_an_unreachable_one_loses_its_credit() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock, worker_gone_s=5.0)
    d.ready("segment", A, "seg-a", "seg-a", credit=4, reset=False)
    clock.now += 6.0  # A said nothing since
    d.queue(unit(0))
    assert d.dispatch("segment", out) == 0 and d.live_workers() == []
    d.ready("segment", B, "seg-b", "seg-b", credit=4, reset=False)
    out.gone.add(B)  # B disconnected: ROUTER_MANDATORY refuses the send
    assert d.dispatch("segment", out) == 0 and d.waiting("segment")
    d.ready("segment", A, "seg-a", "seg-a", credit=1, reset=False)  # A is back
    assert d.dispatch("segment", out) == 1 and out.sent[0][0] == A


def test_settled_tickets_are_late_not_forged_until_the_sample_is_forgotten() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock)
    d.ready("segment", A, "seg-a", "seg-a", credit=2, reset=False)
    d.queue(unit(0))
    d.dispatch("segment", out)
    ticket = out.sent[0][2]
    assert not d.is_late("s", ticket, "seg-a")
    d.retire("s", 0, "segment")
    assert d.pending("segment", "s", 0) is None
    assert d.is_late("s", ticket, "seg-a") and not d.is_late("s", ticket, "seg-b")
    d.forget("s")
    assert not d.is_late("s", ticket, "seg-a")


def test_a_unit_settled_while_queued_is_never_sent() -> None:
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock)
    d.queue(unit(0))
    d.queue(unit(1))
    d.retire("s", 0)
    d.ready("segment", A, "seg-a", "seg-a", credit=5, reset=False)
    assert d.dispatch("segment", out) == 1 and out.sent[0][1] == 1


def test_a_name_taken_over_by_another_socket_moves_with_it() -> None:
    """A worker restarted under the same name (new socket) is handed work on its new socket."""
    clock, out = FakeClock(), Outbox()
    d = dispatcher(clock)
    d.ready("segment", A, "seg-a", "seg-a", credit=1, reset=False)
    d.ready("segment", A, "seg-a2", "seg-a2", credit=1, reset=True)
    d.queue(unit(0))
    d.dispatch("segment", out)
    sent = d.pending("segment", "s", 0)
    assert sent is not None and sent.answered_by(out.sent[0][2], "seg-a2")
