"""Before a worker or a source starts: is a `serve` process there? Say so while waiting; give up.

ZeroMQ connects in the background and would wait forever in silence. `wait_for_server` connects a
probe socket to one of the server's endpoints and watches the ZMTP handshake (CurveZMQ included):
after `notice_s` it says what it is waiting for, after `timeout_s` it raises PipelineError, and a
server that refuses our key is reported at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from leukoscope.errors import PipelineError, SecurityError
from leukoscope.pipeline.security import CurveKeys, secure_client

NOTICE_S = 3.0
_REFUSED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
)


def wait_for_server(
    context: zmq.Context[Any],
    address: str,
    *,
    keys: CurveKeys | None,
    stop: threading.Event,
    timeout_s: float,
    notify: Callable[[str], None],
    notice_s: float = NOTICE_S,
) -> bool:
    """True once a server completes the handshake on `address` (its PULL results endpoint);
    False if `stop` is set first. PipelineError after `timeout_s` without a server; SecurityError
    if it refuses our key. Nothing is sent."""
    probe = context.socket(zmq.PUSH)
    probe.setsockopt(zmq.LINGER, 0)
    secure_client(probe, keys)
    monitor = probe.get_monitor_socket(
        zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    )  # fmt: skip
    started = time.monotonic()
    noticed = False
    try:
        probe.connect(address)
        while not stop.is_set():
            if monitor.poll(100):
                event = recv_monitor_message(monitor)["event"]
                if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    return True
                if event in _REFUSED:
                    raise SecurityError(
                        f"{address} refused the connection: check pipeline.curve_server_key and "
                        "pipeline.curve_client_key (is this host's key allowed on the server?)"
                    )
            waited = time.monotonic() - started
            if waited > timeout_s:
                raise PipelineError(
                    f"no leukoscope serve answered at {address} within {timeout_s:g} s "
                    "(pipeline.connect_timeout_s); is it running, and is the address right?"
                )
            if not noticed and waited > notice_s:
                noticed = True
                notify(f"waiting for {address} (Ctrl-C to stop)")
        return False
    finally:
        probe.disable_monitor()
        monitor.close()
        probe.close()
