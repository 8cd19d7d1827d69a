"""No field can stall the pipeline: a field over its time budget fails alone after two workers, a
field with too many regions fails at once, a worker stops mid-field when told; every stored field
and cell names the worker that produced it. Real inproc ZeroMQ, real saved acquisitions."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leukoscope.classifier.infer import Predictor
from leukoscope.config import PipelineConfig, SegmentationConfig, Settings
from leukoscope.pipeline import budget
from leukoscope.pipeline.distributed import send, serve
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.runner import run_embedded
from leukoscope.pipeline.segmentation import segment
from leukoscope.pipeline.sources import SampleJob, saved_acquisition
from leukoscope.results.store import ResultStore
from leukoscope.results.tables import cell_rows
from leukoscope.types import CellCrop, FrameSet, SampleStatus, SampleSummary

from ..noise_fields import make_noise_field
from .pipeline_helpers import free_base_port, small_acquisition, untrained_checkpoint

NOISE_FOV = 1


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    path = untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")
    return Predictor.load(path, backend="torch", threads=1)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_acquisition(tmp_path_factory.mktemp("clean") / "clean", "clean", 3, seed=7)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = small_acquisition(tmp_path_factory.mktemp("noisy") / "noisy", "noisy", 4, seed=8)
    make_noise_field(folder, NOISE_FOV)
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    with ResultStore(tmp_path / "results.sqlite") as db:
        yield db


def analyse(
    predictor: Predictor, store: ResultStore, jobs: list[SampleJob], config: PipelineConfig,
    **kwargs: Any,
) -> tuple[str, dict[str, SampleSummary]]:  # fmt: skip
    run_id = store.start_run()
    summaries = run_embedded(
        config, jobs, classify=lambda crops: predictor.predict(crops).head_probabilities,
        modalities=predictor.modalities, input_size=predictor.input_size, store=store,
        run_id=run_id, timeout_s=120, **kwargs,
    )  # fmt: skip
    return run_id, summaries


def classes(store: ResultStore, run_id: str, sample_id: str) -> list[tuple[int, int, str]]:
    return [
        (c.key.fov, c.key.cell_index, c.cell_class.value) for c in store.results(run_id, sample_id)
    ]


def test_a_field_over_budget_fails_after_two_workers_and_the_rest_goes_on(
    predictor: Predictor, store: ResultStore, noisy: Path, clean: Path, tmp_path: Path
) -> None:
    """The noise field never finishes (it only looks at its budget): each of two segment workers
    gives it up after `unit_budget_s`, it is not sent to a third, and it fails as `over_budget`;
    the other fields and the next sample are counted as in a run of their own."""
    attempts: list[str] = []
    lock = threading.Lock()

    def stalls_on_noise(frameset: FrameSet) -> list[CellCrop]:
        if frameset.sample_id == "noisy" and frameset.fov == NOISE_FOV:
            with lock:
                attempts.append(threading.current_thread().name)
            while True:  # a field that would never end: only its budget stops it
                budget.check("test field")
                time.sleep(0.005)
        return segment(frameset, out_px=predictor.input_size)

    config = PipelineConfig(
        target_cells=0, segment_workers=3, unit_budget_s=0.5, worker_timeout_s=60.0
    )
    started = time.monotonic()
    run_id, summaries = analyse(
        predictor, store, [saved_acquisition(noisy), saved_acquisition(clean)], config,
        segmenter=stalls_on_noise,
    )  # fmt: skip
    assert time.monotonic() - started < 60  # two budgets, not a worker timeout or a stall
    assert len(attempts) == 2 and len(set(attempts)) == 2, attempts
    noisy_summary = summaries["noisy"]
    assert noisy_summary.status == SampleStatus.INCOMPLETE
    assert noisy_summary.fields_failed == 1 and noisy_summary.fields_total == 4
    failed = store.query(
        "SELECT fov, reason, worker FROM fields WHERE run_id=? AND status='failed'", (run_id,)
    )
    assert [r["fov"] for r in failed] == [NOISE_FOV]
    reason = failed[0]["reason"]
    assert reason.startswith("over_budget: ran past its 0.5 s budget (test field)")
    assert "2 worker(s)" in reason and "field 1" in noisy_summary.status_reason
    assert failed[0]["worker"].startswith("segment-")
    assert summaries["clean"].status == SampleStatus.COMPLETE

    with ResultStore(tmp_path / "alone.sqlite") as alone:
        alone_id, alone_summaries = analyse(
            predictor, alone, [saved_acquisition(clean)], PipelineConfig(target_cells=0)
        )
        assert classes(store, run_id, "clean") == classes(alone, alone_id, "clean")
        assert summaries["clean"].classes == alone_summaries["clean"].classes
        others = [c for c in classes(store, run_id, "noisy") if c[0] != NOISE_FOV]
        noisy_alone_id, _ = analyse(
            predictor, alone, [saved_acquisition(noisy)],
            PipelineConfig(target_cells=0, segmentation=SegmentationConfig(max_regions=100)),
        )  # fmt: skip
        assert others == classes(alone, noisy_alone_id, "noisy")


def test_every_stored_field_and_cell_names_its_worker(
    predictor: Predictor, store: ResultStore, clean: Path
) -> None:
    config = PipelineConfig(target_cells=0, segment_workers=2, classify_workers=2)
    run_id, summaries = analyse(predictor, store, [saved_acquisition(clean)], config)
    assert summaries["clean"].status == SampleStatus.COMPLETE
    fields = store.query("SELECT worker, worker_key FROM fields WHERE run_id=?", (run_id,))
    assert len(fields) == 3
    assert all(f["worker"].startswith("segment-") and f["worker_key"] == "" for f in fields)
    cells = cell_rows(store, run_id, "clean")
    assert cells
    assert all(c.worker is not None and c.worker.startswith("classify-") for c in cells)
    assert all(
        c.segment_worker is not None and c.segment_worker.startswith("segment-") for c in cells
    )
    assert {c.segment_worker for c in cells} <= {f["worker"] for f in fields}


WORKER_SCRIPT = """
import sys
from pathlib import Path

import zmq

from leukoscope.pipeline.distributed import stop_on_signals
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.segmentation import SegmentationParams, segment
from leukoscope.pipeline.stages import SegmentWorker

marker = Path(sys.argv[2])


def endless(frameset):
    marker.write_text("working")
    while True:  # a field that never ends: real segmentation, again and again
        segment(frameset, params=SegmentationParams(max_regions=1_000_000))


with stop_on_signals() as stop:
    context = zmq.Context()
    endpoints = Endpoints.tcp("127.0.0.1", int(sys.argv[1]))
    SegmentWorker(context, endpoints, stop, segmenter=endless, unit_budget_s=3600).run()
    context.term()
print("worker stopped", flush=True)
"""


def test_a_worker_stops_mid_field_on_sigterm(noisy: Path, tmp_path: Path) -> None:
    """A segment worker process busy with a field that would never end exits within seconds of
    SIGTERM (segmentation looks at the stop flag between its steps)."""
    port = free_base_port()
    endpoints = Endpoints.tcp("127.0.0.1", port)
    settings = Settings()
    settings.pipeline = PipelineConfig(target_cells=0, worker_timeout_s=600.0)
    stop = threading.Event()
    server = threading.Thread(
        target=serve, args=(settings, endpoints, "127.0.0.1"),
        kwargs={"database": tmp_path / "results.sqlite", "stop": stop},
    )  # fmt: skip
    source = threading.Thread(
        target=send, args=(settings, [saved_acquisition(noisy)], endpoints), kwargs={"stop": stop}
    )
    marker = tmp_path / "working"
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, str(port), str(marker)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server.start()
    source.start()
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker was never handed a field"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the field
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert worker.wait(timeout=30) == 0
        assert time.monotonic() - signalled < 5, "the worker took more than a few seconds to stop"
        text = (tmp_path / "worker.log").read_text()
        assert "stopped during field" in text and "worker stopped" in text
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
        stop.set()
        source.join(timeout=30)
        server.join(timeout=30)
