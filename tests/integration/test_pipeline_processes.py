"""The pipeline as separate processes over tcp on loopback: killed workers, a restarted aggregator.

Counts must equal those of an uninterrupted embedded run of the same saved acquisition.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leukoscope.results.store import ResultStore
from leukoscope.types import ClassCount, SampleStatus

from ..cli_helpers import clean_environ
from .pipeline_helpers import (
    embedded_classes,
    free_base_port,
    small_acquisition,
    untrained_checkpoint,
)

FIELDS = 12


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="module")
def acquisition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_acquisition(tmp_path_factory.mktemp("acq") / "p1", "p1", FIELDS, seed=11)


@pytest.fixture(scope="module")
def reference(
    model: Path, acquisition: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[ClassCount]:
    """Counts of an uninterrupted embedded run."""
    return embedded_classes(model, acquisition, tmp_path_factory.mktemp("ref") / "ref.sqlite")


class Processes:
    """Leukoscope processes started for one test; all killed at the end."""

    def __init__(self, tmp: Path, model: Path) -> None:
        self.tmp = tmp
        self.env = clean_environ()
        self.env.update(
            LEUKOSCOPE__CLASSIFIER__MODEL_PATH=str(model),
            LEUKOSCOPE__CLASSIFIER__BACKEND="torch",
            LEUKOSCOPE__CLASSIFIER__THREADS="1",
            LEUKOSCOPE__PIPELINE__WORKER_TIMEOUT_S="5",
            LEUKOSCOPE__PIPELINE__TARGET_CELLS="0",
            LEUKOSCOPE__PIPELINE__RESULTS_DB=str(tmp / "results.sqlite"),
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = f"tcp://127.0.0.1:{free_base_port()}"

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "leukoscope", *args],
            env=self.env,
            cwd=self.tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def serve(self, *args: str) -> subprocess.Popen[bytes]:
        return self.start("serve", "serve", "--bind", self.address, *args)

    def worker(self, role: str, index: int) -> subprocess.Popen[bytes]:
        return self.start(f"{role}{index}", "worker", role, "--connect", self.address)

    def send(self, folder: Path) -> subprocess.Popen[bytes]:
        return self.start("send", "send", str(folder), "--connect", self.address)

    def fields_done(self) -> int:
        db = self.tmp / "results.sqlite"
        if not db.exists():
            return 0
        try:
            with sqlite3.connect(db, timeout=1) as conn:
                return int(conn.execute("SELECT COUNT(*) FROM fields").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    def wait_fields(self, count: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while self.fields_done() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} fields done in time: {self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-2000:]}" for p in self.tmp.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def procs(tmp_path: Path, model: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path, model)
    yield processes
    processes.stop()


def final_counts(procs: Processes) -> tuple[SampleStatus, list[ClassCount]]:
    with ResultStore(procs.tmp / "results.sqlite") as store:
        run_id = store.runs()[-1]["run_id"]
        summary = store.summary(run_id, "p1")
    return summary.status, summary.classes


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_killed_workers_do_not_change_counts(
    procs: Processes, acquisition: Path, reference: list[ClassCount]
) -> None:
    procs.serve()
    segment = [procs.worker("segment", i) for i in range(2)]
    classify = [procs.worker("classify", i) for i in range(2)]
    sender = procs.send(acquisition)
    procs.wait_fields(2)
    segment[0].send_signal(signal.SIGKILL)
    classify[0].send_signal(signal.SIGKILL)
    assert sender.wait(timeout=180) == 0, procs.logs()
    assert procs.fields_done() == FIELDS
    status, classes = final_counts(procs)
    assert status == SampleStatus.COMPLETE
    assert classes == reference
    for name in ("segment1", "classify1"):  # every worker says when it reached serve
        assert "connected to tcp://127.0.0.1" in (procs.tmp / f"{name}.log").read_text()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_restarted_aggregator_resumes_with_same_counts(
    procs: Processes, acquisition: Path, reference: list[ClassCount]
) -> None:
    # serve re-reads lost fields only from inside its data folder (a source never chooses)
    procs.env["LEUKOSCOPE__RIG__ACQUISITION__DATA_DIR"] = str(acquisition.parent)
    server = procs.serve()
    procs.worker("segment", 0)
    procs.worker("classify", 0)
    sender = procs.send(acquisition)
    procs.wait_fields(3)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    done_before = procs.fields_done()
    with ResultStore(procs.tmp / "results.sqlite") as store:
        run_id = store.runs()[-1]["run_id"]
    procs.serve("--run", run_id)
    assert sender.wait(timeout=180) == 0, procs.logs()
    assert done_before < FIELDS, "the aggregator was not killed mid-sample"
    status, classes = final_counts(procs)
    assert status == SampleStatus.COMPLETE
    assert classes == reference
