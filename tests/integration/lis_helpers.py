"""Released samples with orders, a results receiver process, and `leukoscope lis ...` processes,
for the LIS tests (real SQLite, real sockets, real processes)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from leukoscope.lis.db import connect
from leukoscope.lis.orders import NEW, Received, check_order, store
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore

from ..cli_helpers import clean_environ
from .release_helpers import give_evidence
from .review_helpers import finished_sample

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def order(database: Path, accession: str, patient: str = "P-100", **fields: str) -> None:
    """File an order for `accession` as the worklist would."""
    db = connect(database, create=True)
    try:
        values = {"accession": accession, "patient_id": patient, "family_name": "Doe",
                  "given_name": "Jo", "birth_date": "19800101", "sex": "F",
                  "placer_order": f"PL-{accession}", **fields}  # fmt: skip
        store(db, [Received(NEW, check_order(values, time.time()))], "test", "")
    finally:
        db.close()


def release(database: Path, sample: str) -> str:
    """A finished sample of 20 cells, with evidence, opened and released; its run id."""
    run, _ = finished_sample(database, sample, cells=20, target=20)
    give_evidence(database, run, sample)
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, sample)
        state = reviews.state(run, sample)
        assert state is not None
        reviews.release(run, sample, reviewer="Ann Lee", version=state.version)
    return run


def correct(database: Path, run: str, sample: str) -> None:
    """Reopen a released sample, change one cell's class and release it again."""
    with ReviewStore(database) as reviews:
        state = reviews.state(run, sample)
        assert state is not None
        reviews.reopen(run, sample, reviewer="Bo Chen", reason="wrong class on cell 0/0",
                       version=state.version)  # fmt: skip
        cell = reviews.cells(run, sample)[0]
        reviews.reclassify(run, sample, cell.fov, cell.cell_index, "BAS", reviewer="Bo Chen",
                           version=cell.version)  # fmt: skip
        state = reviews.state(run, sample)
        assert state is not None
        reviews.release(run, sample, reviewer="Bo Chen", version=state.version)


def lis_env(port: int, **extra: str) -> dict[str, str]:
    """The environment of a `leukoscope lis` process sending to 127.0.0.1:`port`, fast retries."""
    env = clean_environ()
    env.update({"LEUKOSCOPE__LIS__HOST": "127.0.0.1", "LEUKOSCOPE__LIS__PORT": str(port),
                "LEUKOSCOPE__LIS__ACK_TIMEOUT_S": "0.5", "LEUKOSCOPE__LIS__BACKOFF_S": "0.05",
                "LEUKOSCOPE__LIS__BACKOFF_MAX_S": "0.2", "LEUKOSCOPE__LIS__POLL_S": "0.2",
                "LEUKOSCOPE__LIS__MAX_ATTEMPTS": "100", **extra})  # fmt: skip
    return env


def leukoscope(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`leukoscope ARGS` as its own process, output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "leukoscope", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def receiver(port: int, log: Path, schedule: list[str]) -> subprocess.Popen[bytes]:
    """tests/lis_receiver.py on `port`, once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.lis_receiver", str(port), str(log), ",".join(schedule)],
        cwd=ROOT, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    ready = process.stdout.readline().strip()
    process.stdout.close()  # it says nothing more
    assert ready == b"ready"
    return process


def wait_for(condition: object, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
