"""`simulate acquisition` writes OME-Zarr when the config says so, and `batch` analyses an OME-Zarr
and an OME-TIFF acquisition of the same sample to the same counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from leukoscope.acquisition_files import storage
from leukoscope.results.store import ResultStore

from ..cli_helpers import clean_environ
from ..integration.pipeline_helpers import untrained_checkpoint


def leukoscope(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = clean_environ()
    return subprocess.run(
        [sys.executable, "-m", "leukoscope", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, "COLUMNS": "120", **env},
        cwd=tmp,
        check=False,
    )


def test_batch_reads_zarr_and_tiff_acquisitions_of_one_sample_to_the_same_counts(
    tmp_path: Path,
) -> None:
    model = untrained_checkpoint(tmp_path / "model.pt")
    base = {
        "LEUKOSCOPE__CLASSIFIER__MODEL_PATH": str(model),
        "LEUKOSCOPE__CLASSIFIER__THREADS": "1",
    }
    common = ("--fields", "3", "--frame-size", "512", "--cells-per-field", "4", "--seed", "7")
    for fmt, sample in (("ome-tiff", "tif"), ("ome-zarr", "zarr")):
        env = {**base, "LEUKOSCOPE__RIG__ACQUISITION__FORMAT": fmt}
        done = leukoscope(
            tmp_path, env, "simulate", "acquisition", str(tmp_path / sample), "--sample", sample,
            *common,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "zarr").glob("fov_*")) == [
        f"fov_000{i}.ome.zarr" for i in range(3)
    ]
    assert storage.read_acquisition_meta(tmp_path / "tif").field_format == "ome-tiff"

    db = tmp_path / "results.sqlite"
    done = leukoscope(
        tmp_path, base, "batch", str(tmp_path / "tif"), str(tmp_path / "zarr"), "--cells", "0",
        "--db", str(db),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    with ResultStore(db, read_only=True) as store:
        run_id = store.runs()[-1]["run_id"]
        tif, zarr = (store.summary(run_id, s) for s in ("tif", "zarr"))
    assert tif.fields_done == zarr.fields_done == 3
    assert tif.cells_counted > 0
    assert [(c.cell_class, c.count) for c in tif.classes] == [
        (c.cell_class, c.count) for c in zarr.classes
    ]
