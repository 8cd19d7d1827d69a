"""The time budget of one unit of work, checked by the work itself between its steps.

A worker opens a budget around each unit (`within`); long steps call `check(step)` between their
pieces. `check` raises `OverBudget` once the unit has run past its budget and `WorkStopped` once the
worker's stop event is set (SIGTERM, Ctrl-C), so a busy worker gives up its unit, or stops, within
one step. Outside a budget (`dataset build`, `validate`, a library call) `check` does nothing. The
budget lives in a context variable: each worker thread sees only its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from leukoscope.errors import OverBudget, WorkStopped

OVER_BUDGET = "over_budget"
"""How the failure reason of a unit that ran past its budget begins (`over_budget: ran past its 5 s
budget (merging lobes)`, written by the worker)."""


@dataclass(frozen=True)
class Budget:
    """A deadline on the monotonic clock and the worker's stop event."""

    seconds: float
    deadline: float
    stop: threading.Event | None = None

    def check(self, step: str) -> None:
        """Raise WorkStopped when the worker must stop, OverBudget past the deadline."""
        if self.stop is not None and self.stop.is_set():
            raise WorkStopped(f"stopped during {step}")
        if time.monotonic() > self.deadline:
            raise OverBudget(f"ran past its {self.seconds:g} s budget ({step})")


_current: ContextVar[Budget | None] = ContextVar("leukoscope_unit_budget", default=None)


@contextmanager
def within(seconds: float, stop: threading.Event | None = None) -> Iterator[Budget]:
    """A budget of `seconds` (and `stop`) for the work done inside the block."""
    budget = Budget(seconds, time.monotonic() + seconds, stop)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def check(step: str) -> None:
    """Check the current unit's budget (no budget open: nothing to check)."""
    budget = _current.get()
    if budget is not None:
        budget.check(step)
