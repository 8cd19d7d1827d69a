"""Integration fixtures: a ZeroMQ context that fails the test if a socket is left open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import zmq


class TrackingContext(zmq.Context):
    """A zmq.Context that remembers every socket it creates."""

    _created: list[zmq.Socket[Any]] = []  # noqa: RUF012  (declared so pyzmq's setattr allows it)

    def __init__(self) -> None:
        super().__init__()
        self._created: list[zmq.Socket[Any]] = []

    def socket(self, socket_type: int, **kwargs: Any) -> zmq.Socket[Any]:  # type: ignore[override]
        sock: zmq.Socket[Any] = super().socket(socket_type, **kwargs)
        sock.setsockopt(zmq.LINGER, 0)
        self._created.append(sock)
        return sock


@pytest.fixture
def zmq_context() -> Iterator[TrackingContext]:
    """A fresh context; at teardown every socket must be closed (leaks fail the test)."""
    context = TrackingContext()
    try:
        yield context
    finally:
        leaked = [s for s in context._created if not s.closed]
        for sock in leaked:
            sock.close(linger=0)
        context.term()
        if leaked:
            pytest.fail(f"{len(leaked)} ZeroMQ socket(s) left open by the test", pytrace=False)
