"""A released sample whose model names further classes: the report shows IG beside the five and
NRBC per 100 white cells, and the HL7 and FHIR results carry IG % and NRBC/100 WBC with their
LOINC codes (parsed by python-hl7 and fhir.resources, independent of the code that writes them).

The cells are written into the store directly (a nine-class model's results); the expected figures
are worked out by hand: 20 white cells (NEU 8, LYM 4, MO 2, EOS 1, BAS 1, IG 4) and 3 nucleated
red cells, so IG is 4/20 = 20.0 % and NRBC 3 per 20 white cells = 15.0 per 100 WBC.
"""

from __future__ import annotations

import json
from pathlib import Path

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from leukoscope.report.lis import loinc_check_digit
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore
from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES, CellClass, CellKey, CellResult
from tests.cli_helpers import run_cli

from .release_helpers import give_evidence
from .review_helpers import cell_thumbnail

SAMPLE = "X-1"
MODEL_CLASSES = (*CELL_CLASSES, *EXTRA_CLASSES)
# fmt: off
SEQUENCE = ["NEU", "LYM", "NRBC", "IG", "NEU", "MO", "NEU", "EOS", "IG", "NRBC", "LYM", "NEU",
            "BAS", "IG", "NEU", "NRBC", "LYM", "NEU", "MO", "IG", "NEU", "LYM", "NEU"]
# fmt: on
IG_CODE, NRBC_CODE = "38518-7", "19048-8"
EXPECTED_PERCENT = {"26511-6": 40.0, "26478-8": 20.0, "26485-3": 10.0, "26450-7": 5.0,
                    "30180-4": 5.0, IG_CODE: 20.0}  # fmt: skip


def released(database: Path) -> str:
    """The sample's 23 cells stored as a nine-class model classified them, reviewed unchanged and
    released; the run id."""
    per_field = 12
    results = []
    for i, name in enumerate(SEQUENCE):
        probabilities = [0.01] * len(MODEL_CLASSES)
        probabilities[MODEL_CLASSES.index(CellClass(name))] = 0.92
        results.append(
            CellResult(
                key=CellKey(SAMPLE, i // per_field, i % per_field),
                cell_class=CellClass(name),
                probabilities=tuple(probabilities),
                head_probabilities=(tuple(probabilities),),
                bbox=(10 * (i % per_field), 5, 20, 20),
            )
        )
    with ResultStore(database) as store:
        run = store.start_run(model_version="extra-classes-test")
        store.start_sample(run, SAMPLE, target_cells=20, fields_total=2)
        store.add_field(run, SAMPLE, 0, per_field)
        store.add_field(run, SAMPLE, 1, len(SEQUENCE) - per_field)
        store.add_results(run, results, {r.key: cell_thumbnail(i) for i, r in enumerate(results)})
        store.finish_sample(run, store.summary(run, SAMPLE))
    give_evidence(database, run, SAMPLE)
    with ResultStore(database) as store, ReviewStore(database) as reviews:
        reviews.open_review(store, run, SAMPLE)
        assert {c.label for c in reviews.cells(run, SAMPLE)} >= {"IG"}  # a reviewable class
        state = reviews.state(run, SAMPLE)
        assert state is not None
        reviews.release(run, SAMPLE, reviewer="Ann Lee", version=state.version)
    return run


def test_codes_have_valid_check_digits() -> None:
    for code in (IG_CODE, NRBC_CODE):
        number, digit = code.split("-")
        assert loinc_check_digit(number) == digit


def test_report_shows_ig_beside_the_five_and_nrbc_per_100_wbc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "results.sqlite"
    released(database)
    out = tmp_path / "report.json"
    assert run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", "json",
                   "-o", out) == 0  # fmt: skip
    report = json.loads(out.read_text())
    rows = {row["cell_class"]: row for row in report["differential"]}
    assert list(rows) == ["NEU", "LYM", "MO", "EOS", "BAS", "IG"]
    assert rows["IG"]["count"] == 4 and rows["IG"]["percent"] == pytest.approx(20.0)
    assert rows["NEU"]["percent"] == pytest.approx(40.0)
    assert report["sample"]["cells_counted"] == 20 and report["sample"]["nrbc"] == 3
    assert report["sample"]["nrbc_per_100_wbc"] == pytest.approx(15.0)
    page = tmp_path / "report.html"
    assert run_cli(monkeypatch, "report", SAMPLE, "--db", database, "-o", page) == 0
    text = page.read_text()
    assert "Immature granulocytes" in text and "15.0" in text


def test_hl7_carries_ig_percent_and_nrbc_per_100_wbc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "results.sqlite"
    released(database)
    out = tmp_path / "result.hl7"
    assert run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", "hl7",
                   "-o", out) == 0  # fmt: skip
    text = out.read_bytes().decode("utf-8")
    parse_message(text.rstrip("\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message = hl7.parse(text)
    seen = {str(obx[3][0][0]): obx for obx in message.segments("OBX")}
    assert list(seen) == [*EXPECTED_PERCENT, NRBC_CODE]  # the five, IG, then NRBC
    for code, percent in EXPECTED_PERCENT.items():
        assert float(str(seen[code][5])) == pytest.approx(percent)
        assert str(seen[code][6]).startswith("%^")
    assert str(seen[IG_CODE][3][0][1]) == "Immature granulocytes/100 leukocytes in Blood"
    assert str(seen[IG_CODE][7]) == "0.0-0.5" and str(seen[IG_CODE][8]) == "H"
    nrbc = seen[NRBC_CODE]
    assert float(str(nrbc[5])) == pytest.approx(15.0)
    assert str(nrbc[6]).startswith("/100{WBCs}^") and str(nrbc[11]) == "F"
    notes = [str(n[3]) for n in message.segments("NTE")]
    assert notes[-1] == "3 nucleated red cells beside 20 white cells counted"


def test_fhir_carries_ig_percent_and_nrbc_per_100_wbc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "results.sqlite"
    released(database)
    out = tmp_path / "result.json"
    assert run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", "fhir",
                   "-o", out) == 0  # fmt: skip
    bundle = Bundle.model_validate(json.loads(out.read_text()))
    observations = {
        entry.resource.code.coding[0].code: entry.resource
        for entry in bundle.entry
        if entry.resource.get_resource_type() == "Observation"
    }
    assert set(observations) == {*EXPECTED_PERCENT, NRBC_CODE}
    for code, percent in EXPECTED_PERCENT.items():
        assert float(observations[code].valueQuantity.value) == pytest.approx(percent)
        assert observations[code].valueQuantity.code == "%"
    nrbc = observations[NRBC_CODE].valueQuantity
    assert float(nrbc.value) == pytest.approx(15.0) and nrbc.code == "/100{WBCs}"
    assert str(nrbc.system) == "http://unitsofmeasure.org"


def test_a_reviewer_may_give_the_further_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before release, one LYM becomes NRBC (it leaves the differential) and one NEU BLAST: 19
    white cells, 4 nucleated red cells (21.1 per 100 WBC), BLAST 1/19 in the differential."""
    database = tmp_path / "results.sqlite"
    released(database)
    with ResultStore(database, read_only=True) as store:
        run = store.runs()[0].run_id
    with ReviewStore(database) as reviews:
        state = reviews.state(run, SAMPLE)
        assert state is not None
        reviews.reopen(run, SAMPLE, reviewer="Bo Chen", reason="red cell", version=state.version)
        for original, label in (("LYM", "NRBC"), ("NEU", "BLAST")):
            cell = next(c for c in reviews.cells(run, SAMPLE) if c.label == original)
            reviews.reclassify(run, SAMPLE, cell.fov, cell.cell_index, label, reviewer="Bo Chen",
                               version=cell.version)  # fmt: skip
        state = reviews.state(run, SAMPLE)
        assert state is not None
        reviews.release(run, SAMPLE, reviewer="Bo Chen", version=state.version)
        assert reviews.verify() == []
    out = tmp_path / "report.json"
    assert run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", "json",
                   "-o", out) == 0  # fmt: skip
    report = json.loads(out.read_text())
    rows = {row["cell_class"]: row for row in report["differential"]}
    assert list(rows) == ["NEU", "LYM", "MO", "EOS", "BAS", "IG", "BLAST"]
    assert rows["BLAST"]["count"] == 1 and rows["LYM"]["count"] == 3
    assert report["sample"]["cells_counted"] == 19 and report["sample"]["nrbc"] == 4
    assert report["sample"]["nrbc_per_100_wbc"] == pytest.approx(400 / 19)
