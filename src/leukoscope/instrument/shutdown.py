"""Turn SIGTERM into an exception so `with` blocks unwind (and switch the lights off) on `kill`.

Ctrl-C already raises KeyboardInterrupt; SIGTERM's default action kills the process without running
any cleanup. Inside `raise_on_sigterm()` a SIGTERM raises `SystemExit(143)` in the main thread, so
every context manager on the stack runs its exit path. `signals_deferred()` holds SIGINT/SIGTERM back
while a short critical section (switching the lights off) runs, then delivers them.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

SIGTERM_EXIT_STATUS = 128 + int(signal.SIGTERM)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(SIGTERM_EXIT_STATUS)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises SystemExit(143); restores the old handler."""
    if not _in_main_thread():
        yield
        return
    previous: Any = signal.getsignal(signal.SIGTERM)
    if previous is _on_sigterm:  # nested: the outer block restores it
        yield
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread for the block; pending ones are delivered after."""
    if not _in_main_thread():
        yield
        return
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
