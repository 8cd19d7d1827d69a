"""The labelled-acquisition loop through the CLI on real BCCD fields (tests/data/bccd):
`dataset build` -> a tiny `train` -> `validate`, with the reported figures recomputed here from the
results database and the labels file; and one clear error, nothing written, for each refusal."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import cv2
import pytest
from scipy.stats import binomtest

from leukoscope.classifier.checkpoint import file_digest, read_checkpoint
from leukoscope.results.validations import record_validation, validation_records
from leukoscope.rig_identity import rig_digest
from leukoscope.types import CELL_CLASSES, MODALITIES
from tests.cli_helpers import run_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "bccd"
SAMPLES = ("bccd-01", "bccd-02", "bccd-03")
ACQUISITIONS = [str(DATA / s) for s in SAMPLES]
LABELS = DATA / "labels.csv"
RADIUS_PX = 6.0 / 0.25  # the default match radius at the fields' 0.25 um/px
NAMES = [c.value for c in CELL_CLASSES]


@pytest.fixture(autouse=True)
def _quiet_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    # no live PUB port (tests may run beside a pipeline); torch on one thread for a busy CI box
    monkeypatch.setenv("LEUKOSCOPE__PIPELINE__LIVE_ENDPOINT", "")
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)


def read_labels() -> list[dict[str, str]]:
    with LABELS.open(newline="") as handle:
        return list(csv.DictReader(handle))


def stored_cells(database: Path) -> list[tuple[str, int, float, float, str]]:
    """(sample, fov, y, x, class) of every stored cell: the nucleus box centre, read with sqlite3."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT sample_id, fov, bbox_x, bbox_y, bbox_w, bbox_h, cell_class FROM cells"
        ).fetchall()
    return [(s, f, y + (h - 1) / 2, x + (w - 1) / 2, c) for s, f, x, y, w, h, c in rows]


def greedy_match(labels: list[dict[str, str]], cells: list[tuple]) -> dict[int, int]:
    """Label index -> cell index: all pairs within the radius, closest first, one-to-one."""
    pairs = []
    for i, lb in enumerate(labels):
        for j, (sample, fov, y, x, _) in enumerate(cells):
            if (sample, fov) == (lb["sample"], int(lb["fov"])):
                d = math.dist((y, x), (float(lb["y_px"]), float(lb["x_px"])))
                if d <= RADIUS_PX:
                    pairs.append((d, i, j))
    matched: dict[int, int] = {}
    for _, i, j in sorted(pairs):
        if i not in matched and j not in matched.values():
            matched[i] = j
    return matched


def test_build_train_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data, run, report = tmp_path / "data", tmp_path / "run", tmp_path / "report"
    assert (
        run_cli(monkeypatch, "dataset", "build", *ACQUISITIONS, "--labels", LABELS, "--out", data)
        == 0
    )
    out = capsys.readouterr().out
    manifest = list(csv.DictReader((data / "manifest.csv").read_text().splitlines()))
    assert f"wrote {len(manifest)} cells" in out
    labels = read_labels()
    assert len(manifest) == len(labels) == 12  # every labelled cell of these fields is found
    for row in manifest:
        assert float(row["distance_um"]) <= 6.0
        for modality in MODALITIES:
            png = data / modality.value / row["class"] / f"{row['cell_id']}.png"
            image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            assert image is not None and image.shape == (96, 96)  # 24 um at 0.25 um/px
    assert sorted(r["class"] for r in manifest) == sorted(lb["class"] for lb in labels)
    assert not list(tmp_path.glob(".*partial*"))

    train = ("--folds", "2", "--epochs", "1", "--input-size", "16", "--batch-size", "8")
    assert run_cli(monkeypatch, "train", data, *train, "--threads", "1", "--out", run) == 0
    capsys.readouterr()

    # the model records what it was trained on: real acquisitions, this dataset's index files
    _, meta = read_checkpoint(run / "model.pt")
    trained = meta.provenance["training_data"]
    index = hashlib.sha256()
    for name in ("build.json", "manifest.csv"):
        index.update(name.encode() + b"\0" + (data / name).read_bytes() + b"\0")
    assert trained["digest"] == index.hexdigest()
    assert trained["simulated"] is False and trained["source"] == "dataset build"
    assert trained["cells"] == 12 and sum(trained["class_counts"].values()) == 12

    lab = tmp_path / "lab.sqlite"
    code = run_cli(
        monkeypatch, "validate", *ACQUISITIONS, "--labels", LABELS, "--model", run / "model.pt",
        "--out", report, "--db", lab, "--by", "Ann Lee",
    )  # fmt: skip
    assert code == 3  # a one-epoch model fails the acceptance criteria
    screen = capsys.readouterr().out
    assert len(screen.splitlines()) <= 24  # one screen
    figures = json.loads((report / "validation.json").read_text())
    record = figures["record"]
    assert record["verdict"] == "FAIL" and "verdict: FAIL" in screen
    assert all(f"failed: {reason}" in screen for reason in record["failed"])
    assert "## Verdict" in (report / "validation.md").read_text()
    [stored] = validation_records(lab)
    assert stored.id == record["id"] and stored.verdict == "FAIL" and not stored.passing
    assert stored.model_sha256 == file_digest(run / "model.pt") == record["model_sha256"]
    assert stored.rig_digest == rig_digest(0.25, "bccd") and not stored.simulated
    assert stored.validated_by == "Ann Lee" and stored.samples == 3
    assert stored.report == str((report / "validation.json").resolve())
    assert record["labels_sha256"] == file_digest(LABELS)
    for name in ("validation.md", "confusion.png", "agreement.png", "results.sqlite"):
        assert (report / name).stat().st_size > 0
    assert figures["segmentation_settings"]["max_cell_um"] == 9.0

    # recall and precision, recomputed from the database and the labels file
    cells = stored_cells(report / "results.sqlite")
    matched = greedy_match(labels, cells)
    seg = figures["segmentation"]
    assert (seg["found"], seg["white_cell_labels"]) == (len(matched), len(labels))
    assert seg["recall"] == pytest.approx(len(matched) / len(labels))
    assert seg["detections"] == len(cells)
    margin = 10.0 / 0.25  # labels at least 10 um from every edge of the 184 x 138 px frames
    whole = [
        i
        for i, lb in enumerate(labels)
        if margin <= float(lb["x_px"]) <= 183 - margin
        and margin <= float(lb["y_px"]) <= 137 - margin
    ]
    assert (seg["whole_found"], seg["whole_labels"]) == (
        sum(i in matched for i in whole),
        len(whole),
    )
    assert f"recall {100 * len(matched) / len(labels):.1f} %" in screen

    # confusion totals: rows = the matched labels' classes, columns = the stored classes
    confusion = figures["classification"]["confusion"]
    assert sum(map(sum, confusion)) == len(matched)
    for k, name in enumerate(NAMES):
        assert sum(confusion[k]) == sum(labels[i]["class"] == name for i in matched)
        assert sum(row[k] for row in confusion) == sum(
            cells[j][4] == name for j in matched.values()
        )
    hits = sum(labels[i]["class"] == cells[j][4] for i, j in matched.items())
    assert figures["classification"]["accuracy"] == pytest.approx(hits / len(matched))

    # interval coverage: the reference share inside the exact binomial 95% CI of the pipeline's count
    inside = total = 0
    for sample in SAMPLES:
        mine = [c for c in cells if c[0] == sample]
        reference = [lb for lb in labels if lb["sample"] == sample]
        for name in NAMES:
            k = sum(c[4] == name for c in mine)
            ci = binomtest(k, len(mine)).proportion_ci(method="exact")
            share = sum(lb["class"] == name for lb in reference) / len(reference)
            inside += ci.low - 1e-9 <= share <= ci.high + 1e-9
            total += 1
    agreement = figures["agreement"]
    assert (agreement["reference_inside_pipeline_ci"], agreement["intervals"]) == (inside, total)

    # the validation run, reviewed and released, is itself a reference for `dataset build`
    from leukoscope.results.review_store import ReviewStore
    from leukoscope.results.store import ResultStore

    database = report / "results.sqlite"
    run_id = figures["run_id"]
    # release needs a passing validation of the model on this rig set-up, as a lab would have
    record_validation(database, replace(stored, id=0, verdict="PASS", failed=()))
    with ResultStore(database) as results, ReviewStore(database) as review:
        for sample in SAMPLES:
            review.open_review(results, run_id, sample)
        first = review.cells(run_id, "bccd-01")[0]
        review.reclassify(run_id, "bccd-01", first.fov, first.cell_index, "ARTEFACT",
                          reviewer="Ann Lee", version=first.version)  # fmt: skip
        for sample in SAMPLES[:2]:  # bccd-03 stays unreleased: not a reference yet
            review.release(run_id, sample, reviewer="Ann Lee",
                           version=review.state(run_id, sample).version)  # type: ignore[union-attr]  # fmt: skip
    rebuilt = tmp_path / "from_review"
    code = run_cli(monkeypatch, "dataset", "build", *ACQUISITIONS[:2], "--reviewed", database,
                   "--out", rebuilt)  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader((rebuilt / "manifest.csv").read_text().splitlines()))
    stored = [c for c in cells if c[0] in SAMPLES[:2]]
    assert len(rows) == len(stored) - 1  # every reviewed cell but the artefact
    assert {r["annotator"] for r in rows} == {"Ann Lee"}
    assert all(float(r["distance_um"]) == 0.0 for r in rows)  # the very cells the run found
    point = ("sample", "fov", "detection_x_px", "detection_y_px")
    written = {tuple(str(r[k]) for k in point): r["class"] for r in rows}
    expected = {(s, str(f), f"{x:.2f}", f"{y:.2f}"): c for s, f, y, x, c in stored}
    assert len(set(expected) - set(written)) == 1  # the artefact
    assert all(expected[key] == cell_class for key, cell_class in written.items())


def test_refusals_leave_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(*args: object) -> str:
        before = sorted(p.name for p in tmp_path.iterdir())
        assert run_cli(monkeypatch, *args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1  # one line and nothing else
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing new, no .partial
        return err

    # an existing output folder, for both commands; its contents stay as they were
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    build = ("dataset", "build", *ACQUISITIONS, "--labels", LABELS)
    assert "already exists" in refused(*build, "--out", existing)
    assert "already exists" in refused(
        "validate", *ACQUISITIONS, "--labels", LABELS, "--out", existing
    )
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]

    # labels written for another acquisition
    other = tmp_path / "other"
    shutil.copytree(DATA / "bccd-01", other)
    meta = json.loads((other / "acquisition.json").read_text())
    meta["sample_id"] = "bccd-77"
    (other / "acquisition.json").write_text(json.dumps(meta))
    err = refused("dataset", "build", other, "--labels", LABELS, "--out", tmp_path / "d1")
    assert f"{LABELS}:2: sample 'bccd-01' is not among the acquisitions given (bccd-77)" in err
    err = refused("validate", other, "--labels", LABELS, "--out", tmp_path / "v1")
    assert "is not among the acquisitions given" in err

    # acquisitions of two rig set-ups
    moved = tmp_path / "moved"
    shutil.copytree(DATA / "bccd-02", moved)
    meta = json.loads((moved / "acquisition.json").read_text())
    meta["settings_digest"] = "another-rig"
    (moved / "acquisition.json").write_text(json.dumps(meta))
    err = refused("validate", ACQUISITIONS[0], moved, "--labels", LABELS, "--out", tmp_path / "v2")
    assert "different rig set-ups" in err

    # labels from nowhere, or from two places at once
    err = refused("dataset", "build", *ACQUISITIONS, "--out", tmp_path / "d3")
    assert "give either --labels FILE or --reviewed DATABASE" in err
    err = refused(*build, "--reviewed", tmp_path / "x.sqlite", "--out", tmp_path / "d3")
    assert "give either" in err
    err = refused("dataset", "build", *ACQUISITIONS, "--reviewed", tmp_path / "x.sqlite",
                  "--out", tmp_path / "d3")  # fmt: skip
    assert "x.sqlite: results database not found" in err

    # a bad row: file and line named
    bad = tmp_path / "bad.csv"
    bad.write_text(LABELS.read_text() + "bccd-02,3,50,50,PLATELET,me\n")
    err = refused(*build[:-1], bad, "--out", tmp_path / "d2")
    assert f"{bad}:14: unknown class 'PLATELET'" in err
