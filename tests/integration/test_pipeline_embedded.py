"""The embedded pipeline over real inproc ZeroMQ sockets, on simulated saved acquisitions."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from leukoscope.acquisition_files import storage
from leukoscope.classifier.infer import Predictor
from leukoscope.config import PipelineConfig
from leukoscope.pipeline import wire
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.runner import run_embedded
from leukoscope.pipeline.segmentation import segment
from leukoscope.pipeline.source_stage import FieldOutcome
from leukoscope.pipeline.sources import SampleJob, saved_acquisition
from leukoscope.results.store import ResultStore
from leukoscope.types import CellCrop, FrameSet, SampleStatus, SampleSummary

from .pipeline_helpers import free_base_port, small_acquisition, true_cells, untrained_checkpoint

TRUE_CELLS = 15  # the s1 fixture's ground_truth.json: 3, 3, 4 and 5 white cells in fields 0-3


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    path = untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")
    return Predictor.load(path, backend="torch", threads=1)


@pytest.fixture(scope="module")
def acquisition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_acquisition(tmp_path_factory.mktemp("acq") / "s1", "s1", 4, seed=3)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    with ResultStore(tmp_path / "results.sqlite") as db:
        yield db


def analyse(
    predictor: Predictor,
    store: ResultStore,
    jobs: list[SampleJob],
    config: PipelineConfig | None = None,
    **kwargs: Any,
) -> tuple[str, dict[str, SampleSummary]]:
    run_id = store.start_run()
    summaries = run_embedded(
        config or PipelineConfig(target_cells=0),
        jobs,
        classify=lambda crops: predictor.predict(crops).head_probabilities,
        modalities=predictor.modalities,
        input_size=predictor.input_size,
        store=store,
        run_id=run_id,
        timeout_s=60,
        **kwargs,
    )
    return run_id, summaries


def test_counts_every_true_cell_once(
    predictor: Predictor, store: ResultStore, acquisition: Path
) -> None:
    run_id, summaries = analyse(predictor, store, [saved_acquisition(acquisition)])
    summary = summaries["s1"]
    truth = true_cells(acquisition)
    assert len(truth) == TRUE_CELLS
    assert summary.status == SampleStatus.COMPLETE
    assert summary.cells_counted == TRUE_CELLS
    assert sum(c.count for c in summary.classes) == TRUE_CELLS
    assert summary.fields_done == 4 and summary.fields_total == 4
    assert store.summary(run_id, "s1").classes == summary.classes  # rebuilt from the stored cells
    stored = store.results(run_id, "s1")
    assert len({r.key for r in stored}) == len(stored) == TRUE_CELLS  # none twice
    per_field = Counter(r.key.fov for r in stored)
    assert per_field == Counter(int(str(c["field"])) for c in truth) == {0: 3, 1: 3, 2: 4, 3: 5}
    # a simulated acquisition stays marked simulated: in the summary and in the store
    assert summary.simulated is True
    assert store.summary(run_id, "s1").simulated is True
    assert store.samples(run_id)[0]["simulated"] == 1


def test_an_acquired_sample_is_not_marked_simulated(
    predictor: Predictor, store: ResultStore, acquisition: Path, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    shutil.copytree(acquisition, real)
    meta = storage.read_acquisition_meta(real).model_copy(update={"simulated": False})
    storage.write_acquisition_meta(real, meta)
    for fov in storage.list_fields(real):  # each field carries its own mark, as a rig writes it
        storage.write_field(real, storage.read_field(real, fov), simulated=False)
    run_id, summaries = analyse(predictor, store, [saved_acquisition(real)])
    assert summaries["s1"].simulated is False
    assert store.summary(run_id, "s1").simulated is False


def test_target_counts_exactly_the_first_cells(
    predictor: Predictor, store: ResultStore, acquisition: Path
) -> None:
    config = PipelineConfig(target_cells=5)
    _, summaries = analyse(predictor, store, [saved_acquisition(acquisition)], config)
    summary = summaries["s1"]
    assert summary.cells_counted == 5
    assert summary.status == SampleStatus.COMPLETE
    assert "target of 5 cells reached" in summary.status_reason


def test_corrupt_field_is_skipped_and_other_samples_finish(
    predictor: Predictor, store: ResultStore, acquisition: Path, tmp_path: Path
) -> None:
    broken = small_acquisition(tmp_path / "s2", "s2", 3, seed=4)
    field = storage.field_path(broken, 1)
    field.write_bytes(field.read_bytes()[: field.stat().st_size // 2])
    jobs = [saved_acquisition(broken), saved_acquisition(acquisition)]
    _, summaries = analyse(predictor, store, jobs)
    assert summaries["s2"].status == SampleStatus.INCOMPLETE
    assert summaries["s2"].fields_failed == 1
    assert "fov_0001.ome.tif" in summaries["s2"].status_reason
    assert summaries["s1"].status == SampleStatus.COMPLETE
    assert summaries["s1"].cells_counted == TRUE_CELLS


def test_stalled_worker_work_is_redispatched_and_counts_unchanged(
    predictor: Predictor, store: ResultStore, acquisition: Path
) -> None:
    """A fake stalled classify worker: it asks for work, takes it and never answers."""
    _, reference = analyse(predictor, store, [saved_acquisition(acquisition)])
    context: zmq.Context[Any] = zmq.Context()
    endpoints = Endpoints.inproc()
    black_hole = context.socket(zmq.DEALER)
    black_hole.setsockopt(zmq.LINGER, 0)
    black_hole.connect(endpoints.classify)
    wire.send_message(black_hole, wire.Ready(worker="stalled-fake", role="classify", credit=8))
    try:
        config = PipelineConfig(target_cells=0, worker_timeout_s=3.0, high_water_mark=2)
        _, summaries = analyse(
            predictor,
            store,
            [saved_acquisition(acquisition)],
            config,
            context=context,
            endpoints=endpoints,
        )
        swallowed = 0
        while black_hole.poll(0):
            black_hole.recv_multipart()
            swallowed += 1
    finally:
        black_hole.close()
        context.term()
    assert swallowed > 0, "the stalled worker was never given work"
    assert summaries["s1"].cells_counted == TRUE_CELLS  # nothing lost, nothing counted twice
    assert summaries["s1"].classes == reference["s1"].classes
    assert summaries["s1"].status == SampleStatus.COMPLETE


def test_live_summaries_are_published(
    predictor: Predictor, store: ResultStore, acquisition: Path
) -> None:
    context: zmq.Context[Any] = zmq.Context()
    endpoints = Endpoints.inproc()
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.LINGER, 0)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.connect(endpoints.live)
    received: list[SampleSummary] = []
    try:
        _, summaries = analyse(
            predictor,
            store,
            [saved_acquisition(acquisition)],
            context=context,
            endpoints=endpoints,
        )
        while (message := wire.recv_message(subscriber, 100)) is not None:
            assert isinstance(message, wire.SummaryMessage)
            received.append(message.summary)
    finally:
        subscriber.close()
        context.term()
    assert received, "no live summary was published"
    assert received[-1].status == SampleStatus.COMPLETE
    assert all(summary.simulated for summary in received)  # every live summary says so
    assert received[-1].cells_counted == TRUE_CELLS
    assert received[-1].classes == summaries["s1"].classes


def test_back_pressure_bounds_fields_in_flight(
    store: ResultStore, acquisition: Path, predictor: Predictor
) -> None:
    """A slow classifier: the source is held back instead of reading every field ahead."""
    framesets = [storage.read_field(acquisition, fov) for fov in range(4)]
    total = 24
    read: list[int] = []
    leads: list[int] = []

    def fields() -> Iterator[FieldOutcome]:
        for fov in range(total):
            read.append(fov)
            yield FieldOutcome(fov, dataclasses.replace(framesets[fov % 4], fov=fov))

    def slow(crops: np.ndarray) -> np.ndarray:
        leads.append(len(read) - len(leads))
        time.sleep(0.05)
        return predictor.predict(crops).head_probabilities

    config = PipelineConfig(target_cells=0, high_water_mark=1, batch_size=1, batch_wait_ms=0)
    run_id = store.start_run()
    summaries = run_embedded(
        config,
        [SampleJob("s1", fields(), total)],
        classify=slow,
        modalities=predictor.modalities,
        input_size=predictor.input_size,
        store=store,
        run_id=run_id,
        timeout_s=60,
    )
    assert summaries["s1"].status == SampleStatus.COMPLETE
    assert read == list(range(total))
    assert len(leads) >= total // 2
    assert max(leads) <= 8, f"the source ran {max(leads)} fields ahead of the classifier"


def test_embedded_run_also_publishes_on_tcp_for_any_program(
    predictor: Predictor, store: ResultStore, acquisition: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_base_port(1)}"
    context: zmq.Context[Any] = zmq.Context()
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.LINGER, 0)
    subscriber.setsockopt(zmq.SUBSCRIBE, wire.topic("summary"))
    subscriber.connect(endpoint)

    def slow(crops: np.ndarray) -> np.ndarray:
        time.sleep(0.5)  # a run long enough for the subscriber's tcp connection to come up
        return predictor.predict(crops).head_probabilities

    try:
        config = PipelineConfig(target_cells=0, live_endpoint=endpoint, batch_size=1)
        summaries = run_embedded(
            config,
            [saved_acquisition(acquisition)],
            classify=slow,
            modalities=predictor.modalities,
            input_size=predictor.input_size,
            store=store,
            run_id=store.start_run(),
            timeout_s=120,
        )
        frames: list[bytes] = []
        while subscriber.poll(1500):  # final summaries are replayed for late subscribers
            frames = subscriber.recv_multipart()
    finally:
        subscriber.close()
        context.term()
    assert frames, "nothing was published on the tcp live endpoint"
    published = json.loads(frames[0])["summary"]
    assert published["sample_id"] == "s1"
    assert published["cells_counted"] == summaries["s1"].cells_counted == TRUE_CELLS


def test_a_run_stopped_early_is_read_back_with_the_fields_it_acquired(tmp_path: Path) -> None:
    """acquisition.json records the planned fields; a live run stops once its target is reached."""
    folder = small_acquisition(tmp_path / "early", "early", 3, seed=5)
    meta = storage.read_acquisition_meta(folder)
    storage.write_acquisition_meta(folder, meta.model_copy(update={"fields": 200}))
    job = saved_acquisition(folder)
    assert job.fields_total == 3
    assert [outcome.fov for outcome in job.fields] == [0, 1, 2]


@pytest.mark.parametrize(
    "poison",
    [{"timestamps_s": (float("nan"),) * 4}, {"settings_digest": "d" * 300}],
    ids=["nan-metadata", "long-digest"],
)
def test_a_field_the_wire_refuses_fails_alone_and_the_batch_goes_on(
    predictor: Predictor,
    store: ResultStore,
    acquisition: Path,
    tmp_path: Path,
    poison: dict[str, Any],
) -> None:
    """Once: `error: source failed: cannot encode FrameSetMessage`, and later samples never ran."""
    bad = tmp_path / "s3"
    shutil.copytree(acquisition, bad)
    meta = storage.read_acquisition_meta(bad).model_copy(update={"sample_id": "s3"})
    storage.write_acquisition_meta(bad, meta)
    for fov in storage.list_fields(acquisition):  # every field is of s3; field 2 poisoned
        field = dataclasses.replace(storage.read_field(acquisition, fov), sample_id="s3")
        storage.write_field(bad, dataclasses.replace(field, **(poison if fov == 2 else {})),
                            simulated=True)  # fmt: skip
    jobs = [saved_acquisition(bad), saved_acquisition(acquisition)]
    _, summaries = analyse(predictor, store, jobs)
    assert summaries["s3"].status == SampleStatus.INCOMPLETE
    assert summaries["s3"].fields_failed == 1 and summaries["s3"].fields_done == 3
    assert "field 2" in summaries["s3"].status_reason
    assert summaries["s1"].status == SampleStatus.COMPLETE  # the next sample was analysed


def test_a_segment_worker_survives_a_crash_in_one_field(
    predictor: Predictor, store: ResultStore, acquisition: Path
) -> None:
    """One poison field (the segmenter raises MemoryError, as a 131 GiB allocation would) fails
    that field; the same single worker goes on and the sample finishes."""

    def poisoned(frameset: FrameSet) -> list[CellCrop]:
        if frameset.fov == 1:
            raise MemoryError("Unable to allocate 131. GiB")
        return segment(frameset, out_px=predictor.input_size)

    _, summaries = analyse(predictor, store, [saved_acquisition(acquisition)], segmenter=poisoned)
    summary = summaries["s1"]
    assert summary.status == SampleStatus.INCOMPLETE
    assert summary.fields_failed == 1 and summary.fields_done == 3
    assert "segmentation failed: MemoryError" in summary.status_reason


def test_a_classify_worker_survives_a_crash_in_one_batch(
    predictor: Predictor, store: ResultStore, acquisition: Path
) -> None:
    calls = []

    def flaky(crops: np.ndarray) -> np.ndarray:
        calls.append(len(crops))
        if len(calls) == 1:
            raise RuntimeError("CUDA error: an illegal memory access")
        return predictor.predict(crops).head_probabilities

    config = PipelineConfig(target_cells=0, batch_size=1, batch_wait_ms=0.0)
    run_id = store.start_run()
    summaries = run_embedded(
        config,
        [saved_acquisition(acquisition)],
        classify=flaky,
        modalities=predictor.modalities,
        input_size=predictor.input_size,
        store=store,
        run_id=run_id,
        timeout_s=60,
    )
    summary = summaries["s1"]
    assert len(calls) > 1, "the worker stopped after the crash"
    assert summary.fields_failed == 1
    assert "classification failed: RuntimeError" in summary.status_reason
    assert summary.fields_done == 3
