"""The report names its model's evidence: the SHA-256, the passing validation for the sample's rig
set-up (from the store, else the sample's acquisition.json), or the plain statement that there is
none; a simulator-trained model's CV figures are labelled as the simulator's."""

from __future__ import annotations

import html
import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

from leukoscope.classifier.shipped import DEFAULT_MODEL
from leukoscope.report.data import ReportData, gather_report
from leukoscope.report.evidence import NOT_VALIDATED, statement
from leukoscope.report.export import render_csv, render_json
from leukoscope.report.html import render_html
from leukoscope.results.store import ResultStore
from leukoscope.results.validations import ValidationRecord, record_validation
from leukoscope.rig_identity import rig_digest

from .release_helpers import give_evidence
from .review_helpers import finished_sample

SAMPLE = "S-1"
BCCD = Path(__file__).resolve().parents[1] / "data" / "bccd" / "bccd-01"


def _data(database: Path) -> ReportData:
    with ResultStore(database, read_only=True) as store:
        return gather_report(store, SAMPLE, with_thumbnails=False)


def test_no_validation_is_said_plainly_then_the_passing_one_is_named(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE)
    with sqlite3.connect(database) as db:  # the run used the shipped, simulator-trained model
        db.execute("UPDATE runs SET model_path=? WHERE run_id=?", (str(DEFAULT_MODEL), run))
    db.close()
    sha = give_evidence(database, run, SAMPLE, validate=False)

    data = _data(database)
    page, document = render_html(data), json.loads(render_json(data))
    assert html.escape(NOT_VALIDATED) in page and "Simulator cross-validation" in page
    assert "Cross-validated performance" not in page and f"sha256 {sha[:12]}" in page
    assert document["validation"] == {
        "rig_digest": data.evidence.rig_digest if data.evidence else "",
        "releasable": False,
        "statement": NOT_VALIDATED,
        "record": None,
    }
    model = document["model"]
    assert model["sha256"] == sha and model["cv_label"] == "simulator cross-validation"
    assert model["trained_on"]["simulated"] is True and model["trained_on"]["cells"] == 6697
    assert render_csv(data).splitlines()[1].endswith(f",{sha},false")

    give_evidence(database, run, SAMPLE)  # a PASS of this model on this rig
    data = _data(database)
    line = "PASS, 20 samples, accuracy 97.0 %, largest bias LYM 1.5 pp"
    assert line in render_html(data) and html.escape(NOT_VALIDATED) not in render_html(data)
    document = json.loads(render_json(data))
    assert document["validation"]["releasable"] and line in document["validation"]["statement"]
    assert document["validation"]["record"]["validated_by"] == "Quality Manager"
    assert render_csv(data).splitlines()[1].endswith(f",{sha},true")


def test_rig_from_the_acquisition_when_the_store_has_none(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE)
    folder = tmp_path / "acq"
    folder.mkdir()
    shutil.copy(BCCD / "acquisition.json", folder / "acquisition.json")
    sha = give_evidence(database, run, SAMPLE, validate=False)
    with sqlite3.connect(database) as db:  # a store that did not record the rig set-up
        db.execute("UPDATE samples SET source=?, settings_digest=NULL, pixel_size_um=NULL", (
            str(folder),))  # fmt: skip
    db.close()
    rig = rig_digest(0.25, "bccd")  # bccd-01's acquisition.json
    data = _data(database)
    assert data.evidence is not None and data.evidence.rig_digest == rig
    assert not data.evidence.releasable
    record = ValidationRecord(
        id=0, model_sha256=sha, rig_digest=rig, verdict="PASS", simulated=False, created_s=0.0,
        validated_by="Ann Lee", samples=20, cells=4000, accuracy=0.95, segmentation_recall=0.99,
        largest_bias_pp=2.0, largest_bias_class="MO", model_path="m.pt", failed=(), report="v",
    )  # fmt: skip
    record_validation(database, replace(record, rig_digest="ffffffffffffffff"))  # another rig
    assert not _data(database).evidence.releasable  # type: ignore[union-attr]
    record_validation(database, record)
    evidence = _data(database).evidence
    assert evidence is not None and evidence.releasable
    assert "validated on this rig set-up" in statement(evidence) and "by Ann Lee" in statement(
        evidence
    )
