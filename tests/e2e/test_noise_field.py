"""A saved acquisition with a noise field, then a clean sample, through `batch` and through
`serve` with two segment workers (separate processes): the noise field fails alone with its reason
and the clean sample gets the counts it gets on its own; `cells --format csv` names the workers."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leukoscope.results.store import ResultStore
from leukoscope.types import SampleStatus

from ..cli_helpers import clean_environ
from ..integration.pipeline_helpers import free_base_port, small_acquisition, untrained_checkpoint
from ..noise_fields import make_noise_field

NOISE_FOV = 1
MAX_REGIONS = "100"  # a 512 x 512 field's noisy half holds about 260 candidate regions
REASON = "too_many_regions: "


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("acq")
    noisy = small_acquisition(root / "noisy", "noisy", 4, seed=8)
    make_noise_field(noisy, NOISE_FOV)
    return noisy, small_acquisition(root / "clean", "clean", 3, seed=7)


def environment(model: Path, db: Path) -> dict[str, str]:
    env = clean_environ()
    env.update(
        LEUKOSCOPE__CLASSIFIER__MODEL_PATH=str(model),
        LEUKOSCOPE__CLASSIFIER__BACKEND="torch",
        LEUKOSCOPE__CLASSIFIER__THREADS="1",
        LEUKOSCOPE__PIPELINE__TARGET_CELLS="0",
        LEUKOSCOPE__PIPELINE__WORKER_TIMEOUT_S="20",
        LEUKOSCOPE__PIPELINE__SEGMENTATION__MAX_REGIONS=MAX_REGIONS,
        LEUKOSCOPE__PIPELINE__RESULTS_DB=str(db),
        COLUMNS="120",
    )
    return env


def leukoscope(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leukoscope", *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=cwd, check=False,
    )  # fmt: skip


def outcome(
    db: Path, sample_id: str
) -> tuple[SampleStatus, list[tuple[int, int, str]], dict[int, str]]:
    """Status, (fov, cell index, class) of every stored cell, and failed fields' reasons."""
    with ResultStore(db, read_only=True) as store:
        run_id = [r for r in store.samples() if r.sample_id == sample_id][-1].run_id
        summary = store.summary(run_id, sample_id)
        cells = [
            (c.key.fov, c.key.cell_index, c.cell_class.value)
            for c in store.results(run_id, sample_id)
        ]
        failed = {
            int(r["fov"]): str(r["reason"])
            for r in store.query(
                "SELECT fov, reason FROM fields WHERE run_id=? AND sample_id=? AND status='failed'",
                (run_id, sample_id),
            )
        }
    return summary.status, cells, failed


def test_batch_fails_the_noise_field_alone_and_counts_the_clean_sample_as_alone(
    tmp_path: Path, model: Path, folders: tuple[Path, Path]
) -> None:
    noisy, clean = folders
    env = environment(model, tmp_path / "both.sqlite")
    started = time.monotonic()
    both = leukoscope(
        env, tmp_path, "batch", str(noisy), str(clean), "--db", str(tmp_path / "both.sqlite")
    )
    assert both.returncode == 0, both.stderr
    assert time.monotonic() - started < 240  # it ends: no field can stall the batch
    assert "field 1: too_many_regions: " in both.stdout + both.stderr
    status, cells, failed = outcome(tmp_path / "both.sqlite", "noisy")
    assert status == SampleStatus.INCOMPLETE
    assert list(failed) == [NOISE_FOV] and failed[NOISE_FOV].startswith(REASON)
    assert "candidate regions, more than 100: noise, a bubble or a smear edge?" in failed[NOISE_FOV]
    assert {fov for fov, _, _ in cells} == {0, 2, 3}

    alone = leukoscope(env, tmp_path, "batch", str(clean), "--db", str(tmp_path / "alone.sqlite"))
    assert alone.returncode == 0, alone.stderr
    clean_both = outcome(tmp_path / "both.sqlite", "clean")
    assert clean_both[0] == SampleStatus.COMPLETE and clean_both[1]
    assert clean_both == outcome(tmp_path / "alone.sqlite", "clean")

    exported = leukoscope(
        env,
        tmp_path,
        "cells",
        "clean",
        "--db",
        str(tmp_path / "both.sqlite"),
        "--format",
        "csv",
        "-o",
        "-",
    )
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == len(clean_both[1])
    assert all(r["worker"].startswith("classify-") for r in rows)
    assert all(r["segment_worker"].startswith("segment-") for r in rows)


def test_serve_with_two_segment_workers_fails_the_noise_field_alone(
    tmp_path: Path, model: Path, folders: tuple[Path, Path]
) -> None:
    noisy, clean = folders
    db = tmp_path / "served.sqlite"
    env = environment(model, db)
    address = f"tcp://127.0.0.1:{free_base_port()}"
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "leukoscope", *args],
                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        procs.append(proc)
        return proc

    try:
        start("serve", "serve", "--bind", address)
        start("segment0", "worker", "segment", "--connect", address)
        start("segment1", "worker", "segment", "--connect", address)
        start("classify0", "worker", "classify", "--connect", address)
        sent = start("send", "send", str(noisy), str(clean), "--connect", address)
        assert sent.wait(timeout=240) == 0, (tmp_path / "send.log").read_text()[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    status, cells, failed = outcome(db, "noisy")
    assert status == SampleStatus.INCOMPLETE
    assert list(failed) == [NOISE_FOV] and failed[NOISE_FOV].startswith(REASON)
    assert {fov for fov, _, _ in cells} == {0, 2, 3}
    served = outcome(db, "clean")
    assert served[0] == SampleStatus.COMPLETE
    alone_db = tmp_path / "alone.sqlite"
    alone = leukoscope(
        environment(model, alone_db), tmp_path, "batch", str(clean), "--db", str(alone_db)
    )
    assert alone.returncode == 0, alone.stderr
    assert served == outcome(alone_db, "clean")
    with ResultStore(db, read_only=True) as store:
        workers = {
            r["worker"] for r in store.query("SELECT worker FROM fields WHERE status='done'")
        }
    assert workers and all(w.startswith("segment-") for w in workers)
