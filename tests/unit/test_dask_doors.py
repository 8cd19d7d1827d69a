"""The doors of `batch --scheduler`, without a cluster: Dask missing, `--run` alone, a worker's
model file that is not the client's, a field that fails for its own reason."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from leukoscope.classifier.checkpoint import file_digest
from leukoscope.cli.dask_batch import check_scheduler
from leukoscope.config import PipelineConfig
from leukoscope.errors import ConfigError
from leukoscope.pipeline import dask_field
from leukoscope.pipeline.dask_field import FieldWork, ModelMismatch, analyse_field

from ..integration.pipeline_helpers import small_acquisition, untrained_checkpoint


def test_scheduler_without_dask_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name)
    )
    with pytest.raises(ConfigError, match=r"pip install 'leukoscope\[dask\]'$"):
        check_scheduler("local", None)
    assert check_scheduler("", None) == ""  # in process: Dask not needed


def test_run_needs_a_scheduler() -> None:
    with pytest.raises(ConfigError, match="give --scheduler too"):
        check_scheduler("", "3f2a")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


def work(model: Path, digest: str) -> FieldWork:
    return FieldWork(str(model), digest, "onnx", 1, PipelineConfig())


def test_a_worker_with_another_model_file_fails_its_task(model: Path, tmp_path: Path) -> None:
    folder = small_acquisition(tmp_path / "acq", "S", 1)
    with pytest.raises(ModelMismatch, match=r"has SHA-256 .* the client's has 000000000000"):
        analyse_field(str(folder), "S", 0, work(model, "0" * 64))
    with pytest.raises(ModelMismatch, match="cannot read the model"):
        analyse_field(str(folder), "S", 0, work(tmp_path / "none.pt", "0" * 64))


def test_model_loads_once_per_worker_and_a_bad_field_fails_alone(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = small_acquisition(tmp_path / "acq", "S", 2)
    broken = folder / "fov_0001.ome.tif"
    broken.write_bytes(broken.read_bytes()[:1000])
    right = work(model, file_digest(model))
    first = analyse_field(str(folder), "S", 0, right)
    assert first.reason == "" and first.cell_count == len(first.results) > 0
    assert len(first.thumbnails) == len(first.results)
    loads = []
    monkeypatch.setattr(
        dask_field.Predictor, "load", classmethod(lambda cls, *a, **k: loads.append(a))
    )
    again = analyse_field(str(folder), "S", 0, right)
    assert loads == [] and again.results == first.results  # the cached model, same cells
    bad = analyse_field(str(folder), "S", 1, right)
    assert bad.stage == "read" and "fov_0001" in bad.reason and bad.results == ()
