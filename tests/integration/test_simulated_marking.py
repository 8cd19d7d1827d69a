"""A simulated sample is marked simulated in the store and in every report format; old databases
migrate (schema 1 -> 2) without losing anything and say the flag was not recorded. Every saved field
carries its own mark too, and a sample whose files disagree with its acquisition.json is refused."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import tifffile
from ome_types import from_xml

from leukoscope.acquisition_files import storage
from leukoscope.config import RigConfig, Settings
from leukoscope.errors import StorageError
from leukoscope.instrument.acquisition import Acquisition
from leukoscope.instrument.rig import SimulationOptions, open_rig
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.pipeline.resume import resume_point
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.report.data import gather_report
from leukoscope.report.export import render_csv, render_json
from leukoscope.report.html import render_html
from leukoscope.report.table import summary_table
from leukoscope.report.tables import render_csv as render_cells_csv
from leukoscope.results.store import SCHEMA_VERSION, ResultStore
from leukoscope.results.tables import CELL_COLUMNS, cell_rows
from leukoscope.types import CELL_CLASSES, CellClass, CellKey, CellResult

from ..e2e.test_cli_pipeline import cli
from .pipeline_helpers import small_acquisition, untrained_checkpoint

BCCD = Path(__file__).parents[1] / "data" / "bccd" / "bccd-01"  # real fields, saved unmarked
REFUSED = "refused (a sample whose files disagree is never analysed)"

# schema 1 as shipped before `samples.simulated` (copied from the store of commit 9ce8310)
SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_s REAL NOT NULL, finished_s REAL,
    model_path TEXT NOT NULL DEFAULT '', model_version TEXT NOT NULL DEFAULT '',
    config_digest TEXT NOT NULL DEFAULT '');
CREATE TABLE samples (run_id TEXT NOT NULL REFERENCES runs(run_id), sample_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running', reason TEXT NOT NULL DEFAULT '',
    target_cells INTEGER NOT NULL DEFAULT 200, fields_total INTEGER,
    fields_done INTEGER NOT NULL DEFAULT 0, fields_failed INTEGER NOT NULL DEFAULT 0,
    cells_counted INTEGER NOT NULL DEFAULT 0, cells_flagged INTEGER NOT NULL DEFAULT 0,
    started_s REAL NOT NULL, finished_s REAL, elapsed_s REAL NOT NULL DEFAULT 0,
    timings TEXT NOT NULL DEFAULT '{}', source TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, sample_id));
CREATE TABLE fields (run_id TEXT NOT NULL, sample_id TEXT NOT NULL, fov INTEGER NOT NULL,
    cell_count INTEGER, status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    reason TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, sample_id, fov));
CREATE TABLE cells (run_id TEXT NOT NULL, sample_id TEXT NOT NULL, fov INTEGER NOT NULL,
    cell_index INTEGER NOT NULL, cell_class TEXT NOT NULL, probabilities TEXT NOT NULL,
    head_probabilities TEXT NOT NULL, disagreement REAL NOT NULL, flagged INTEGER NOT NULL,
    flag_reason TEXT NOT NULL, bbox_x INTEGER NOT NULL, bbox_y INTEGER NOT NULL,
    bbox_w INTEGER NOT NULL, bbox_h INTEGER NOT NULL, thumbnail BLOB,
    PRIMARY KEY (run_id, sample_id, fov, cell_index));
INSERT INTO runs (run_id, started_s) VALUES ('old', 1.0);
INSERT INTO samples (run_id, sample_id, status, fields_total, started_s)
    VALUES ('old', 'OLD-1', 'complete', 1, 1.0);
INSERT INTO fields VALUES ('old', 'OLD-1', 0, 1, 'done', '');
INSERT INTO cells VALUES ('old', 'OLD-1', 0, 0, 'NEU', '[0.9,0.025,0.025,0.025,0.025]',
    '[[0.9,0.025,0.025,0.025,0.025]]', 0.0, 0, '', 1, 2, 3, 4, NULL);
"""


def neutrophil(sample: str, fov: int = 0, index: int = 0) -> CellResult:
    p = tuple(0.9 if c == CellClass.NEU else 0.025 for c in CELL_CLASSES)
    return CellResult(CellKey(sample, fov, index), CellClass.NEU, p, (p,), 0.0)


def stored(store: ResultStore, sample: str, *, simulated: bool) -> str:
    run_id = store.start_run()
    store.start_sample(run_id, sample, target_cells=0, fields_total=1, simulated=simulated)
    store.add_field(run_id, sample, 0, 1)
    store.add_results(run_id, [neutrophil(sample)])
    store.finish_sample(run_id, store.summary(run_id, sample))
    return run_id


def test_schema_1_database_migrates_and_keeps_its_results(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
    with ResultStore(path) as store:
        summary = store.summary("old", "OLD-1")
        assert summary.cells_counted == 1 and summary.simulated is None  # not recorded
        run_id = stored(store, "NEW-1", simulated=True)
        assert store.summary(run_id, "NEW-1").simulated is True
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (
            str(SCHEMA_VERSION),
        )
    with ResultStore(path) as store:  # reopening a migrated database is a no-op
        assert store.summary("old", "OLD-1").cells_counted == 1


def test_every_report_format_marks_a_simulated_sample(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        sim_run = stored(store, "SIM-1", simulated=True)
        real_run = stored(store, "REAL-1", simulated=False)
        sim = gather_report(store, "SIM-1", sim_run, Settings())
        real = gather_report(store, "REAL-1", real_run, Settings())
    html = render_html(sim)
    assert "<title>SIMULATED" in html and 'id="simulated"' in html
    assert "SIMULATED" not in render_html(real)
    assert json.loads(render_json(sim))["sample"]["simulated"] is True
    assert json.loads(render_json(real))["sample"]["simulated"] is False
    assert "simulated" in [f["code"] for f in json.loads(render_json(sim))["quality_flags"]]
    rows = list(csv.DictReader(io.StringIO(render_csv(sim))))
    assert {row["simulated"] for row in rows} == {"true"}
    assert all("simulated" in row["quality_flags"].split(";") for row in rows)
    assert {r["simulated"] for r in csv.DictReader(io.StringIO(render_csv(real)))} == {"false"}


def test_the_per_cell_csv_says_simulated(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        sim_run = stored(store, "SIM-1", simulated=True)
        real_run = stored(store, "REAL-1", simulated=False)
        records = [
            r.record()
            for run, sample in ((sim_run, "SIM-1"), (real_run, "REAL-1"))
            for r in cell_rows(store, run, sample)
        ]
    rows = list(csv.DictReader(io.StringIO(render_cells_csv(records, CELL_COLUMNS))))
    assert {(r["sample_id"], r["simulated"]) for r in rows} == {
        ("SIM-1", "true"),
        ("REAL-1", "false"),
    }


def test_live_table_says_simulated(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_id = stored(store, "SIM-1", simulated=True)
        table = summary_table(store.summary(run_id, "SIM-1"))
    assert str(table.title).startswith("SIMULATED sample SIM-1")
    assert "not from a patient" in str(table.caption)


def test_a_database_opened_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        run_id = stored(store, "SIM-1", simulated=True)
    with ResultStore(path, read_only=True) as store:
        assert store.summary(run_id, "SIM-1").simulated is True
        with pytest.raises(StorageError, match="readonly"):
            store.start_run()


def test_a_schema_1_database_reads_read_only_without_migrating(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
    with ResultStore(path, read_only=True) as store:
        assert store.summary("old", "OLD-1").simulated is None
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta").fetchone() == ("1",)


def tiff_mark(path: Path) -> str | None:
    """The field's `simulated` mark as ome-types reads its (schema-validated) OME-XML."""
    with tifffile.TiffFile(path) as tif:
        ome = from_xml(tif.ome_metadata, validate=True)
    refs = {ref.id for ref in ome.images[0].annotation_refs}
    values = [
        m.value
        for a in ome.structured_annotations.map_annotations
        if a.namespace == "leukoscope" and a.id in refs
        for m in a.value.ms
        if m.k == "simulated"
    ]
    assert len(values) <= 1, values
    return values[0] if values else None


def edit_meta(folder: Path, **change: object) -> Path:
    """`folder` with keys of its acquisition.json changed (a value of None removes the key)."""
    path = folder / storage.META_FILE
    meta = json.loads(path.read_text())
    meta.update(change)
    path.write_text(json.dumps({k: v for k, v in meta.items() if v is not None}))
    return folder


def real_acquisition(folder: Path, sample_id: str, seed: int) -> Path:
    """A saved acquisition as a real rig writes it: acquisition.json and every field say real."""
    small_acquisition(folder, sample_id, 1, seed=seed)
    for fov in storage.list_fields(folder):
        storage.write_field(folder, storage.read_field(folder, fov), simulated=False)
    return edit_meta(folder, simulated=False)


def test_every_simulated_ome_tiff_field_carries_the_mark(tmp_path: Path) -> None:
    folder = tmp_path / "sim"
    generate_acquisition(folder, "SIM-1", 3, frame_shape=(32, 48), cells_per_field=1.0)
    paths = [storage.field_path(folder, fov) for fov in storage.list_fields(folder)]
    assert len(paths) == 3 and [tiff_mark(p) for p in paths] == ["true"] * 3
    real = real_acquisition(tmp_path / "real", "REAL-1", seed=2)
    assert tiff_mark(storage.field_path(real, 0)) == "false"  # explicit, told from unmarked
    assert storage.field_mark(real, 0) is False and storage.field_mark(folder, 0) is True
    assert saved_acquisition(real).simulated is False  # a real field marked false passes


def test_every_simulated_ome_zarr_field_carries_the_mark(tmp_path: Path) -> None:
    pytest.importorskip("zarr")
    folder = tmp_path / "sim"
    generate_acquisition(folder, "SIM-1", 2, frame_shape=(32, 48), field_format="ome-zarr")
    for fov in (0, 1):
        attrs = json.loads((storage.field_path(folder, fov, "ome-zarr") / ".zattrs").read_text())
        assert attrs["leukoscope"]["simulated"] is True
    edit_meta(folder, simulated=None)
    with pytest.raises(StorageError, match=rf"field 0 is marked simulated .*{re.escape(REFUSED)}"):
        saved_acquisition(folder)


def test_the_simulated_rig_marks_the_fields_it_saves_and_resume_checks_them(
    tmp_path: Path,
) -> None:
    config = RigConfig()
    config.lights.settle_ms = 0.0
    options = SimulationOptions(seed=2, frame_shape=(48, 64))
    folder = tmp_path / "R-1"
    with open_rig(config, simulate=True, options=options) as rig:
        assert all(r.ok for r in Acquisition(rig).run("R-1", 2, folder))
    assert [tiff_mark(storage.field_path(folder, f)) for f in (0, 1)] == ["true", "true"]
    assert resume_point(folder, "R-1").meta.simulated is True
    edit_meta(folder, simulated=False)
    said = f"field 0 is marked simulated but acquisition.json says real: {REFUSED}"
    with pytest.raises(StorageError, match=re.escape(said)):
        resume_point(folder, "R-1")


def test_a_real_field_under_a_simulated_acquisition_json_is_refused(tmp_path: Path) -> None:
    folder = edit_meta(real_acquisition(tmp_path / "real", "REAL-1", seed=3), simulated=True)
    with pytest.raises(StorageError) as refused:
        saved_acquisition(folder)
    assert str(refused.value) == (
        f"{folder}: field 0 is marked real but acquisition.json says simulated: {REFUSED}"
    )


def test_unmarked_fields_follow_acquisition_json(tmp_path: Path) -> None:
    assert storage.field_mark(BCCD, 0) is None  # saved before fields were marked
    assert saved_acquisition(BCCD).simulated is False
    folder = edit_meta(shutil.copytree(BCCD, tmp_path / "bccd"), simulated=True)
    assert saved_acquisition(folder).simulated is True


def test_batch_refuses_a_stripped_simulated_sample_and_analyses_the_rest(tmp_path: Path) -> None:
    stripped = edit_meta(
        small_acquisition(tmp_path / "stripped", "stripped", 2, seed=1), simulated=None
    )
    flipped = edit_meta(
        small_acquisition(tmp_path / "flipped", "flipped", 1, seed=2), simulated=False
    )
    real = real_acquisition(tmp_path / "real", "real", seed=3)
    good = small_acquisition(tmp_path / "good", "good", 1, seed=4)
    model = untrained_checkpoint(tmp_path / "model.pt")
    db = tmp_path / "results.sqlite"
    folders = [str(p) for p in (stripped, flipped, real, good)]
    result = cli(tmp_path, model, "batch", *folders, "--cells", "0", "--db", str(db))
    assert result.returncode == 1, result.stderr  # some folders were refused
    assert "Traceback" not in result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert skipped == [
        f"skipped {stripped}: {stripped}: field 0 is marked simulated but acquisition.json says "
        f"real (it has no simulated key): {REFUSED}",
        f"skipped {flipped}: {flipped}: field 0 is marked simulated but acquisition.json says "
        f"real: {REFUSED}",
    ], result.stderr
    with ResultStore(db, read_only=True) as store:
        run_id = store.runs()[-1]["run_id"]
        analysed = {s["sample_id"]: s for s in store.samples(run_id)}
    assert set(analysed) == {"real", "good"}  # nothing of the refused samples is stored
    assert analysed["good"]["status"] == "complete" and analysed["good"]["simulated"] == 1
    assert analysed["real"]["status"] == "complete" and analysed["real"]["simulated"] == 0
