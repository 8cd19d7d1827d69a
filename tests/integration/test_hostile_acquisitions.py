"""Saved acquisitions that lie: a field of another sample, duplicate keys, an unknown format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from leukoscope.acquisition_files import storage
from leukoscope.errors import StorageError
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.pipeline.sources import saved_acquisition


def small(folder: Path, sample: str) -> Path:
    generate_acquisition(folder, sample, 2, frame_shape=(64, 64), cells_per_field=0.0)
    return folder


def test_a_field_of_another_sample_fails_alone(tmp_path: Path) -> None:
    mine = small(tmp_path / "S-1", "S-1")
    other = small(tmp_path / "S-2", "S-2")
    shutil.copyfile(other / "fov_0001.ome.tif", mine / "fov_0001.ome.tif")
    with pytest.raises(StorageError, match="of sample 'S-2', the acquisition is of 'S-1'"):
        storage.read_field(mine, 1)
    outcomes = list(saved_acquisition(mine).fields)
    assert outcomes[0].frameset is not None
    assert outcomes[1].frameset is None and "sample 'S-2'" in str(outcomes[1].reason)


def test_duplicate_keys_and_an_unknown_format_version_are_refused(tmp_path: Path) -> None:
    folder = small(tmp_path / "S-1", "S-1")
    meta = folder / "acquisition.json"
    text = meta.read_text()
    meta.write_text(text.replace('"sample_id": "S-1"', '"sample_id": "S-1", "sample_id": "S-9"'))
    with pytest.raises(StorageError, match="key 'sample_id' is given twice"):
        storage.read_acquisition_meta(folder)
    data = json.loads(text)
    data["format_version"] = 2
    meta.write_text(json.dumps(data))
    with pytest.raises(StorageError, match="format_version 2 is not one this version reads"):
        storage.read_acquisition_meta(folder)


def test_resume_of_a_complete_sample_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from leukoscope.errors import ParameterError
    from leukoscope.pipeline.resume import refuse_complete
    from leukoscope.results.store import ResultStore

    db = tmp_path / "r.sqlite"
    refuse_complete(db, "S-1")  # no database yet: nothing to refuse
    with ResultStore(db) as store:
        run_id = store.start_run()
        store.start_sample(run_id, "S-1", target_cells=10, fields_total=None)
    refuse_complete(db, "S-1")  # running, interrupted or incomplete: resumable
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE samples SET status='complete'")
    with pytest.raises(ParameterError, match=r"'S-1' is complete .* --replace"):
        refuse_complete(db, "S-1")
    refuse_complete(db, "S-2")
