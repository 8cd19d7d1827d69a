"""The Dask cluster `batch --scheduler` runs on: a LocalCluster of processes, or an existing one.

Dask is an optional extra (`pip install 'leukoscope[dask]'`) and is imported here only when a
scheduler is asked for, so the core runs without it. `ADDRESS` is what Dask takes: `local` (a
LocalCluster of worker processes on this machine), a scheduler address (`tcp://host:8786`, e.g. a
`dask scheduler` started by hand, by dask-jobqueue on SLURM/PBS, or by the Dask Kubernetes
operator), or a scheduler file (`scheduler.json`, as `dask scheduler --scheduler-file` writes).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leukoscope.errors import ConfigError, PipelineError

LOCAL = "local"
CONNECT_TIMEOUT_S = 30.0


def require_dask() -> None:
    """One clear line when Dask is not installed."""
    if importlib.util.find_spec("distributed") is None:
        raise ConfigError(
            "--scheduler needs Dask, which is not installed: pip install 'leukoscope[dask]'"
        )


def distributed() -> Any:
    """The `distributed` module (typed loosely: its API is partly untyped)."""
    require_dask()
    return importlib.import_module("distributed")


def local_worker_count(requested: int) -> int:
    """Worker processes of a `local` cluster: as asked, else one per core."""
    return requested if requested > 0 else max(1, os.cpu_count() or 1)


def dashboard_link(client: Any) -> str:
    """The Dask dashboard's address ('' when the scheduler serves none)."""
    try:
        info = client.scheduler_info()
        if "dashboard" not in info.get("services", {}):
            return ""
        link = str(client.dashboard_link)
    except Exception:  # no dashboard (bokeh missing), or the scheduler does not say
        return ""
    if getattr(client, "cluster", None) is not None and importlib.util.find_spec("bokeh") is None:
        link += " (its pages need bokeh: pip install bokeh)"
    return link


def _quiet() -> int:
    """Dask's own log lines go no lower than ERROR in this process (a worker lost mid-run is
    expected and retried; our CLI says what matters); the previous level."""
    logger = logging.getLogger("distributed")
    before = logger.level
    logger.setLevel(logging.ERROR)
    return before


@contextlib.contextmanager
def dask_client(scheduler: str, local_workers: int = 0) -> Iterator[Any]:
    """A `distributed.Client` for `scheduler`; the LocalCluster it started (if any) is closed on
    exit. PipelineError (one line) when the scheduler cannot be reached."""
    require_dask()
    dask = distributed()
    Client, LocalCluster = dask.Client, dask.LocalCluster

    before = _quiet()
    cluster = None
    try:
        if scheduler == LOCAL:
            cluster = LocalCluster(
                n_workers=local_worker_count(local_workers), threads_per_worker=1,
                processes=True, dashboard_address=":0", silence_logs=logging.ERROR,
            )  # fmt: skip
            client = Client(cluster)
        else:
            client = _connect(Client, scheduler)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=10)
    finally:
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=20)
        logging.getLogger("distributed").setLevel(before)


def _connect(client_type: Any, scheduler: str) -> Any:
    path = Path(scheduler)
    try:
        if path.suffix == ".json":
            if not path.is_file():
                raise PipelineError(f"no Dask scheduler file {scheduler}")
            return client_type(scheduler_file=str(path), timeout=CONNECT_TIMEOUT_S)
        return client_type(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PipelineError(
            f"cannot reach the Dask scheduler at {scheduler}: {type(exc).__name__}: {exc}"
        ) from None


def worker_threads(client: Any) -> int:
    """Threads over every worker of the cluster now (at least 1)."""
    try:
        nthreads = client.nthreads()
    except Exception:
        return 1
    return max(1, sum(int(n) for n in nthreads.values()))
