"""Where the pipeline's sockets live: one address per role, inproc for embedded runs, tcp otherwise.

The central process (source side and aggregator) binds every endpoint; workers only connect. Over
tcp the five roles take five consecutive ports from `base_port`, so a worker needs one address.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

ROLES = ("ingest", "segment", "classify", "results", "live")
MAX_PORT = 65535
_counter = itertools.count()


@dataclass(frozen=True)
class Endpoints:
    """ZeroMQ addresses of the pipeline's five sockets."""

    ingest: str  # source PUSH -> aggregator PULL: framesets, sample start/end, failed fields
    segment: str  # aggregator PUSH -> segment workers PULL: framesets
    classify: str  # aggregator PUSH -> classify workers PULL: cell batches
    results: str  # every worker PUSH -> aggregator PULL: cells, results, hello, heartbeat
    live: str  # aggregator PUB -> anyone SUB: live summaries

    @classmethod
    def inproc(cls) -> Endpoints:
        """Fresh in-process addresses (unique per call, so several pipelines can coexist)."""
        tag = f"leukoscope-{os.getpid()}-{next(_counter)}"
        return cls(*(f"inproc://{tag}-{role}" for role in ROLES))

    @classmethod
    def tcp(cls, host: str, base_port: int) -> Endpoints:
        """tcp addresses on `host`, ports base_port .. base_port+4 in ROLES order."""
        return cls(*(f"tcp://{host}:{base_port + i}" for i in range(len(ROLES))))

    @classmethod
    def parse(cls, address: str) -> Endpoints:
        """Endpoints from `tcp://HOST:BASE_PORT` (what `--connect` / `--bind` take)."""
        from leukoscope.errors import ParameterError

        scheme, _, rest = address.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme != "tcp" or not host or not port.isdigit():
            raise ParameterError(f"expected tcp://HOST:PORT, got {address!r}")
        base = int(port)
        last = base + len(ROLES) - 1
        if base < 1 or last > MAX_PORT:
            raise ParameterError(
                f"{address}: the base port must be 1-{MAX_PORT - len(ROLES) + 1} "
                f"(ports {base}-{last} are used, the highest port is {MAX_PORT})"
            )
        return cls.tcp(host.strip("[]"), base)
