"""`batch --scheduler`: the fields as Dask tasks on worker processes give exactly the cells and
counts of plain `batch`, also when a worker process is killed mid-run, and a stopped run resumes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leukoscope.config import Settings
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.results.store import ResultStore
from leukoscope.types import SampleSummary

from ..cli_helpers import run_cli
from .pipeline_helpers import small_acquisition, untrained_checkpoint

distributed = pytest.importorskip("distributed")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    # Dask's own teardown may leave a socket or a process for the garbage collector
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*(Port|port).*:UserWarning"),
]

SAMPLES = 3
FIELDS = 4


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """An untrained model and a few small saved acquisitions."""
    root = tmp_path_factory.mktemp("archive")
    model = untrained_checkpoint(root / "model.pt")
    folders = [
        small_acquisition(root / f"acq{i}", f"S{i}", FIELDS, seed=40 + i) for i in range(SAMPLES)
    ]
    return model, folders


def settings(model: Path, db: Path, cells: int) -> Settings:
    current = Settings()
    current.classifier.model_path = model
    current.classifier.threads = 1
    current.pipeline.results_db = db
    current.pipeline.target_cells = cells
    current.pipeline.live_endpoint = ""
    current.batch.local_workers = 2
    return current


def cli_env(monkeypatch: pytest.MonkeyPatch, model: Path) -> None:
    for name in [k for k in os.environ if k.startswith("LEUKOSCOPE")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LEUKOSCOPE__CLASSIFIER__MODEL_PATH", str(model))
    monkeypatch.setenv("LEUKOSCOPE__CLASSIFIER__THREADS", "1")
    monkeypatch.setenv("LEUKOSCOPE__PIPELINE__LIVE_ENDPOINT", "")
    monkeypatch.setenv("LEUKOSCOPE__BATCH__LOCAL_WORKERS", "2")
    monkeypatch.setenv("COLUMNS", "120")


def stored(db: Path) -> dict[str, Any]:
    """Everything the run stored that counts: cells, fields, counted keys, summaries."""
    with ResultStore(db) as store:
        run_id = store.runs()[-1].run_id
        out: dict[str, Any] = {}
        for row in store.samples(run_id):
            sid = row.sample_id
            fields = store.query(
                "SELECT fov, cell_count, status, reason FROM fields WHERE run_id=? AND sample_id=?"
                " ORDER BY fov",
                (run_id, sid),
            )
            thumbs = store.query(
                "SELECT COUNT(*) AS n FROM cells WHERE run_id=? AND sample_id=?"
                " AND thumbnail IS NOT NULL",
                (run_id, sid),
            )
            out[sid] = {
                "cells": store.results(run_id, sid),
                "fields": [tuple(r) for r in fields],
                "counted": store.counted_keys(run_id, sid),
                "summary": store.summary(run_id, sid),
                "status": (row.status, row.reason),
                "thumbnails": thumbs[0]["n"],
            }
    return out


def same_summary(a: SampleSummary, b: SampleSummary, fields: bool = True) -> None:
    """The same differential; with `fields` the same fields done too (with a target, how many
    fields were analysed before it was reached depends on the schedule, in plain batch too)."""
    assert [(c.cell_class, c.count) for c in a.classes] == [
        (c.cell_class, c.count) for c in b.classes
    ]
    assert (a.cells_counted, a.cells_flagged, a.fields_total) == (
        b.cells_counted, b.cells_flagged, b.fields_total,
    )  # fmt: skip
    if fields:
        assert (a.fields_done, a.fields_failed) == (b.fields_done, b.fields_failed)
    assert (a.status, a.status_reason) == (b.status, b.status_reason)


def assert_same(plain: dict[str, Any], dask: dict[str, Any], all_cells: bool = True) -> None:
    """The same samples, counted cells and summaries; with `all_cells` every stored cell too
    (same class, probabilities within float tolerance) and every field row."""
    assert sorted(plain) == sorted(dask)
    for sid in plain:
        a, b = plain[sid], dask[sid]
        assert a["counted"] == b["counted"], sid
        assert a["status"] == b["status"], sid
        same_summary(a["summary"], b["summary"], fields=all_cells)
        if not all_cells:
            continue
        assert a["fields"] == b["fields"], sid
        assert [c.key for c in a["cells"]] == [c.key for c in b["cells"]], sid
        assert a["thumbnails"] == b["thumbnails"] == len(a["cells"])
        for x, y in zip(a["cells"], b["cells"], strict=True):
            assert (x.cell_class, x.flagged, x.bbox) == (y.cell_class, y.flagged, y.bbox)
            np.testing.assert_allclose(x.probabilities, y.probabilities, atol=1e-5)
            np.testing.assert_allclose(x.head_probabilities, y.head_probabilities, atol=1e-5)


@pytest.fixture(scope="module")
def plain(archive: tuple[Path, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plain `batch --cells 0` (in process) over the archive: what Dask must reproduce."""
    from leukoscope.pipeline.service import analyse, load_predictor

    model, folders = archive
    db = tmp_path_factory.mktemp("plain") / "plain.sqlite"
    current = settings(model, db, cells=0)
    predictor, path = load_predictor(current)
    analyse(current, [saved_acquisition(f) for f in folders], predictor=predictor, model_path=path)
    return db


def test_cli_local_cluster_gives_the_cells_and_counts_of_plain_batch(
    archive: tuple[Path, list[Path]],
    plain: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, folders = archive
    cli_env(monkeypatch, model)
    db = tmp_path / "dask.sqlite"
    code = run_cli(
        monkeypatch, "batch", *folders, "--cells", "0", "--db", db, "--scheduler", "local"
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Dask scheduler local; dashboard http://" in out.out
    assert "Traceback" not in out.err
    assert_same(stored(plain), stored(db))
    with ResultStore(db) as store:
        assert store.query("SELECT DISTINCT worker FROM cells")[0]["worker"].startswith("dask-")
        run = store.runs()[-1]
    with ResultStore(plain) as store:
        assert run.model_version == store.runs()[-1].model_version


@pytest.mark.parametrize("wait_for", ["first", "all"])
def test_cli_target_counts_the_same_cells(
    archive: tuple[Path, list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    wait_for: str,
) -> None:
    """With a target the sample stops early (its outstanding tasks cancelled): the counted cells
    and summaries are plain batch's (stored cells beyond the count may differ, as in plain).
    `all`: every wait returns only when all that is out has finished (a fake for the timing a busy
    machine gives now and then), so several fields of a sample finish in one wait and the target is
    reached while they are booked: the rest, cancelled with the sample, are dropped, not fatal."""
    model, folders = archive
    cli_env(monkeypatch, model)
    if wait_for == "all":
        real_wait = distributed.wait

        def wait_for_all(futures: Any, timeout: Any = None, return_when: str = "") -> Any:
            return real_wait(futures, timeout=timeout, return_when="ALL_COMPLETED")

        monkeypatch.setattr(distributed, "wait", wait_for_all)
    runs = {}
    for name, extra in (("plain", ()), ("dask", ("--scheduler", "local"))):
        db = tmp_path / f"{name}.sqlite"
        assert run_cli(monkeypatch, "batch", *folders, "--cells", "5", "--db", db, *extra) == 0
        runs[name] = stored(db)
    assert_same(runs["plain"], runs["dask"], all_cells=False)


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A LocalCluster of two worker processes, one thread each, reached by its address."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def test_a_worker_killed_mid_run_still_gives_exactly_the_counts(
    archive: tuple[Path, list[Path]], plain: Path, tmp_path: Path, cluster: Any
) -> None:
    from leukoscope.pipeline.dask_batch import analyse_on_dask
    from leukoscope.pipeline.service import load_predictor

    model, folders = archive
    db = tmp_path / "killed.sqlite"
    current = settings(model, db, cells=0)
    predictor, path = load_predictor(current)
    pids = cluster.run(os.getpid)
    killed: list[int] = []

    def kill_a_busy_worker(summary: SampleSummary, workers: object) -> None:
        if killed:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # a worker with a field task on it, killed with it
            busy = [w for w, keys in cluster.processing().items() if keys and w in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
                return
            time.sleep(0.01)

    scheduler = cluster.scheduler.address
    jobs = [saved_acquisition(f) for f in folders]
    analyse_on_dask(
        current, jobs, predictor=predictor, model_path=path, scheduler=scheduler,
        on_summary=kill_a_busy_worker,
    )  # fmt: skip
    assert killed, "no worker was busy to be killed"
    assert_same(stored(plain), stored(db))
    with ResultStore(db) as store:
        assert not store.query("SELECT * FROM fields WHERE status = 'failed'")


def test_ctrl_c_leaves_the_store_consistent_and_the_run_resumes(
    archive: tuple[Path, list[Path]], plain: Path, tmp_path: Path, cluster: Any
) -> None:
    from leukoscope.pipeline.dask_batch import analyse_on_dask
    from leukoscope.pipeline.service import load_predictor

    model, folders = archive
    db = tmp_path / "stopped.sqlite"
    current = settings(model, db, cells=0)
    predictor, path = load_predictor(current)
    scheduler = cluster.scheduler.address
    answers = []

    def ctrl_c_after_three(summary: SampleSummary, workers: object) -> None:
        answers.append(summary)
        if len(answers) == 3:
            raise KeyboardInterrupt

    jobs = [saved_acquisition(f) for f in folders]
    with pytest.raises(KeyboardInterrupt):
        analyse_on_dask(
            current, jobs, predictor=predictor, model_path=path, scheduler=scheduler,
            on_summary=ctrl_c_after_three,
        )  # fmt: skip
    with ResultStore(db) as store:
        run_id = store.runs()[-1].run_id
        rows = store.samples(run_id)
        stopped = [r for r in rows if r.reason == "interrupted: Ctrl-C"]
        assert stopped and all(r.status == "incomplete" for r in stopped)
        assert store.query("SELECT COUNT(*) AS n FROM cells WHERE counted IS NULL")[0]["n"] == 0
        before = store.query("SELECT COUNT(*) AS n FROM cells")[0]["n"]
    # the same run again: only what was not stored is analysed, and the counts are plain's
    jobs = [saved_acquisition(f) for f in folders]
    outcome = analyse_on_dask(
        current, jobs, predictor=predictor, model_path=path, scheduler=scheduler,
        run_id=run_id[:8],
    )  # fmt: skip
    assert outcome.run_id == run_id
    assert before > 0
    assert_same(stored(plain), stored(db))
