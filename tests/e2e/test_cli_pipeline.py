"""`leukoscope run --simulate` and `leukoscope batch` end to end, as a user runs them."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.results.store import ResultStore
from leukoscope.types import SampleStatus

from ..cli_helpers import clean_environ
from ..integration.pipeline_helpers import small_acquisition, true_cells, untrained_checkpoint

FRAME = 512


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


def cli(tmp: Path, model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_environ()
    env.update(
        LEUKOSCOPE__CLASSIFIER__MODEL_PATH=str(model),
        LEUKOSCOPE__CLASSIFIER__THREADS="1",
        LEUKOSCOPE__RIG__CAMERA__WIDTH=str(FRAME),
        LEUKOSCOPE__RIG__CAMERA__HEIGHT=str(FRAME),
        COLUMNS="120",
    )
    return subprocess.run(
        [sys.executable, "-m", "leukoscope", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp,
        check=False,
    )


def test_run_simulate_counts_the_target_of_real_cells(tmp_path: Path, model: Path) -> None:
    db = tmp_path / "results.sqlite"
    result = cli(
        tmp_path, model, "run", "--simulate", "--sample", "e2e", "--cells", "20",
        "--out", str(tmp_path / "acq"), "--db", str(db), "--seed", "5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sample e2e — complete" in result.stdout
    assert "cells counted 20" in result.stdout
    with ResultStore(db) as store:
        run = store.runs()[-1]
        run_id = run["run_id"]
        summary = store.summary(run_id, "e2e")
        results = store.results(run_id, "e2e")
    assert summary.status == SampleStatus.COMPLETE and summary.cells_counted == 20
    # the run names its model: architecture and the SHA-256 of the checkpoint file
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert run["model_version"].endswith(f"sha256:{digest}")
    assert run["model_version"].split()[0] == "hs_mm_mimo"
    # every counted cell is a real white cell of the simulated sample (ground truth)
    sample = SimulatedSample(5, SampleParams(frame_shape=(FRAME, FRAME)))
    for cell in results:
        x, y, w, h = cell.bbox
        centre = np.array([y + h / 2, x + w / 2])
        # inside a true white cell's outline (a lobed nucleus can sit well off the cell's centre;
        # smudge cells, debris and platelets never overlap a white cell)
        truth = sample.field(cell.key.fov).cells
        inside = [t for t in truth if np.linalg.norm(centre - np.array(t.centre_yx)) < t.radius_px]
        assert len(inside) == 1, f"cell {cell.key} at {centre} lies in {len(inside)} white cells"
    assert (tmp_path / "acq" / "e2e" / "acquisition.json").is_file()


def test_batch_reports_corrupt_field_and_finishes_other_samples(
    tmp_path: Path, model: Path
) -> None:
    good = small_acquisition(tmp_path / "good", "good", 3, seed=8)
    bad = small_acquisition(tmp_path / "bad", "bad", 3, seed=9)
    broken = bad / "fov_0002.ome.tif"
    broken.write_bytes(broken.read_bytes()[:1000])
    db = tmp_path / "results.sqlite"
    result = cli(tmp_path, model, "batch", str(bad), str(good), "--cells", "0", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "sample bad — incomplete" in result.stdout
    assert "fov_0002.ome.tif" in result.stdout
    assert "sample good — complete" in result.stdout
    with ResultStore(db) as store:
        run_id = store.runs()[-1]["run_id"]
        good_summary = store.summary(run_id, "good")
    assert good_summary.cells_counted > 0
    assert good_summary.cells_counted <= len(true_cells(good))


def test_batch_skips_a_folder_that_is_not_an_acquisition(tmp_path: Path, model: Path) -> None:
    empty = tmp_path / "not-an-acquisition"
    empty.mkdir()
    result = cli(tmp_path, model, "batch", str(empty))
    assert result.returncode == 1
    assert "not-an-acquisition" in result.stderr


def test_serve_refuses_a_non_loopback_bind_without_keys(tmp_path: Path, model: Path) -> None:
    result = cli(tmp_path, model, "serve", "--bind", "tcp://0.0.0.0:5999")
    assert result.returncode == 2
    assert "refusing to bind 0.0.0.0 without CurveZMQ keys" in result.stderr
    assert "leukoscope keys generate" in result.stderr


def test_keys_generate_writes_both_pairs(tmp_path: Path, model: Path) -> None:
    result = cli(tmp_path, model, "keys", "generate", str(tmp_path / "keys"))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "keys").iterdir())
    assert names == ["client.key", "client.key_secret", "server.key", "server.key_secret"]
    assert (tmp_path / "keys" / "server.key_secret").stat().st_mode & 0o077 == 0
