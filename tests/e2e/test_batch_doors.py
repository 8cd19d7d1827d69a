"""One bad acquisition fails only itself: `batch` skips it with one line and analyses the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leukoscope.acquisition_files import storage
from leukoscope.results.store import ResultStore

from ..integration.pipeline_helpers import small_acquisition, untrained_checkpoint
from .test_cli_pipeline import cli


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


def edited(folder: Path, change: dict[str, object] | None = None, raw: str = "") -> Path:
    """`folder` with its acquisition.json changed (or replaced by `raw` text)."""
    meta = folder / "acquisition.json"
    data = json.loads(meta.read_text())
    data.update(change or {})
    meta.write_text(raw or json.dumps(data))
    return folder


def test_bad_acquisitions_are_skipped_and_the_rest_of_the_batch_is_analysed(
    tmp_path: Path, model: Path
) -> None:
    nested = small_acquisition(tmp_path / "nested", "nested", 1, seed=1)
    edited(nested, raw='{"sample_id": ' + "[" * 100_000 + "]" * 100_000 + "}")
    newline = edited(small_acquisition(tmp_path / "nl", "nl", 1, seed=2), {"sample_id": "a\nb"})
    huge_px = edited(small_acquisition(tmp_path / "px", "px", 1, seed=3), {"pixel_size_um": 5000})
    stray = small_acquisition(tmp_path / "stray", "stray", 2, seed=4)
    storage.field_path(stray, 9_999_999).write_bytes(b"stray")
    good = small_acquisition(tmp_path / "good", "good", 2, seed=5)
    db = tmp_path / "results.sqlite"
    folders = [str(p) for p in (nested, newline, huge_px, stray, good)]
    result = cli(tmp_path, model, "batch", *folders, "--cells", "0", "--db", str(db))
    assert result.returncode == 1, result.stderr  # some folders were skipped
    assert "Traceback" not in result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert [line.split(":")[0] for line in skipped] == [
        f"skipped {nested}",
        f"skipped {newline}",
        f"skipped {huge_px}",
    ], result.stderr
    assert "pixel_size_um" in skipped[2]
    with ResultStore(db, read_only=True) as store:
        run_id = store.runs()[-1]["run_id"]
        analysed = {s["sample_id"]: s for s in store.samples(run_id)}
        stray_summary = store.summary(run_id, "stray")
    assert set(analysed) == {"stray", "good"}
    assert analysed["good"]["status"] == "complete"
    assert stray_summary.fields_total is not None and stray_summary.fields_total <= 3
