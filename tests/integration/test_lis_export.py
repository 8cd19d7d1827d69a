"""A released differential goes to a laboratory system as HL7 v2.5.1 ORU^R01 and FHIR R4, checked
with parsers and validators independent of the code that writes them; nothing else goes."""

from __future__ import annotations

import json
from pathlib import Path

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from leukoscope.config import Settings
from leukoscope.errors import LisError
from leukoscope.report.lis import LOINC, PANEL, loinc_check_digit
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore
from tests.cli_helpers import run_cli

from .lis_helpers import order as file_order
from .release_helpers import give_evidence
from .review_helpers import finished_sample

SAMPLE = "S-1"
RANGES = {LOINC[c][0]: (r.low_percent, r.high_percent)
          for c, r in Settings().report.reference_ranges.items()}  # fmt: skip


def order(database: Path, accession: str, patient: str, **fields: str) -> None:
    """An order filed as the worklist files it; one with a delimiter in the patient id is
    refused."""
    if "|" in patient:
        with pytest.raises(LisError, match="HL7 delimiter"):
            file_order(database, accession, patient, **fields)
        return
    file_order(database, accession, patient, **fields)


# The Manual Differential panel's percentage terms, as LOINC publishes them (loinc.org/24318-8).
EXPECTED_CODES = {"NEU": "26511-6", "LYM": "26478-8", "MO": "26485-3", "EOS": "26450-7",
                  "BAS": "30180-4"}  # fmt: skip


def released_sample(database: Path) -> dict[str, int]:
    """A finished sample, one neutrophil reclassified as monocyte, released; the reviewed counts."""
    run, results = finished_sample(database, SAMPLE, cells=20, target=20)
    give_evidence(database, run, SAMPLE)
    with ResultStore(database) as store, ReviewStore(database) as reviews:
        reviews.open_review(store, run, SAMPLE)
        neu = next(c for c in reviews.cells(run, SAMPLE) if c.original == "NEU")
        reviews.reclassify(run, SAMPLE, neu.fov, neu.cell_index, "MO", reviewer="Ann", version=0)
        reviews.release(run, SAMPLE, reviewer="Ann Lee", version=1)
    counts = {name: 0 for name in EXPECTED_CODES}
    for result in results:
        counts[result.cell_class.value] += 1
    counts["NEU"] -= 1
    counts["MO"] += 1
    return counts


def test_loinc_codes_are_the_panel_terms_with_valid_check_digits() -> None:
    for known in ("26464-8", "751-8", "744-3", "71676-1"):  # codes published by LOINC
        number, digit = known.split("-")
        assert loinc_check_digit(number) == digit
    assert {c.value: code for c, (code, _) in LOINC.items()} == EXPECTED_CODES
    for code in [*EXPECTED_CODES.values(), PANEL[0]]:
        number, digit = code.split("-")
        assert loinc_check_digit(number) == digit, code


def test_an_unreleased_sample_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "results.sqlite"
    finished_sample(database, SAMPLE)
    for fmt in ("hl7", "fhir"):
        out = tmp_path / f"out.{fmt}"
        code = run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", fmt, "-o", out)
        err = capsys.readouterr().err
        assert code == 2 and not out.exists()
        assert err.startswith("error: ") and "not reviewed, not released" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_hl7_message_of_a_released_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "results.sqlite"
    counts = released_sample(database)
    out = tmp_path / "result.hl7"
    assert (
        run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", "hl7", "-o", out) == 0
    )
    text = out.read_bytes().decode("utf-8")  # segments end with CR, kept as written
    # no order: MSH, OBR, 3 NTE (cells and review, evidence, chain head), 5 x (OBX, NTE)
    assert "\n" not in text and text.count("\r") == 1 + 1 + 3 + 5 + 5
    parse_message(text.rstrip("\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message = hl7.parse(text)  # an independent parser
    assert str(message.segment("MSH")[9]) == "ORU^R01^ORU_R01"
    assert str(message.segment("MSH")[12]) == "2.5.1"
    obr = message.segment("OBR")
    assert str(obr[3]) == SAMPLE and str(obr[4]).startswith("24318-8^") and str(obr[25]) == "F"
    total = sum(counts.values())
    seen = {}
    for obx in message.segments("OBX"):
        code = str(obx[3][0][0])
        seen[code] = float(str(obx[5]))
        assert str(obx[6]).startswith("%^") and str(obx[11]) == "F"
        assert "Ann Lee" in str(obx[16])
        low, high = RANGES[code]
        assert str(obx[7]) == f"{low:.1f}-{high:.1f}" and str(obx[8]) in {"L", "N", "H"}
    by_code = {EXPECTED_CODES[name]: 100.0 * n / total for name, n in counts.items()}
    assert seen == pytest.approx(by_code, abs=0.05)
    notes = [str(n[3]) for n in message.segments("NTE")]
    assert len(notes) == 8 and f"{counts['MO']} of {total} cells" in notes[3 + 2]
    assert notes[0].startswith(f"{total} white cells counted") and "validated on" in notes[1]
    names = {str(segment[0]) for segment in message}
    assert not names & {"PID", "ORC", "SPM"}  # nobody ordered it: no patient, no order


def test_with_its_order_the_result_names_patient_order_and_specimen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "results.sqlite"
    released_sample(database)
    order(database, SAMPLE, patient="MRN|7", family_name="O'Brien & Sons")  # refused: delimiter
    order(database, SAMPLE, patient="MRN-7", family_name="O'Brien & Sons", given_name="Ann^Marie")
    hl7_out, fhir_out = tmp_path / "r.hl7", tmp_path / "r.json"
    for fmt, out in (("hl7", hl7_out), ("fhir", fhir_out)):
        assert run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", fmt,
                       "-o", out) == 0  # fmt: skip
    text = hl7_out.read_bytes().decode("utf-8")
    parse_message(text.rstrip("\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message = hl7.parse(text)
    names = [str(segment[0]) for segment in message]
    assert names[:4] == ["MSH", "PID", "ORC", "OBR"] and names[-1] == "SPM"
    pid = message.segment("PID")
    assert pid.extract_field(1, 3, 1, 1) == "MRN-7"
    assert pid.extract_field(1, 5, 1, 1) == "O'Brien & Sons"  # escaped out, unescaped in
    assert pid.extract_field(1, 5, 1, 2) == "Ann^Marie"
    assert str(message.segment("ORC")[2]) == f"PL-{SAMPLE}"
    assert (
        str(message.segment("OBR")[2]) == f"PL-{SAMPLE}"
        and str(message.segment("OBR")[3]) == SAMPLE
    )
    assert message.segment("SPM").extract_field(1, 2, 1, 2) == SAMPLE
    document = json.loads(fhir_out.read_text(encoding="utf-8"))
    Bundle.model_validate(document)
    assert document["type"] == "transaction"
    by_type: dict[str, list[dict[str, object]]] = {}
    for entry in document["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry)
        assert entry["request"]["method"] in ("PUT", "POST")
    patient = by_type["Patient"][0]
    specimen = by_type["Specimen"][0]
    assert patient["resource"]["identifier"][0]["value"] == "MRN-7"  # type: ignore[index]
    report = by_type["DiagnosticReport"][0]["resource"]
    assert report["subject"]["reference"] == patient["fullUrl"]  # type: ignore[index]
    assert report["specimen"][0]["reference"] == specimen["fullUrl"]  # type: ignore[index]
    assert report["effectiveDateTime"] != report["issued"]  # acquired, then released
    for entry in by_type["Observation"]:
        observation = entry["resource"]
        assert observation["referenceRange"][0]["low"]["unit"] == "%"  # type: ignore[index]
        assert observation["interpretation"][0]["coding"][0]["code"] in {"L", "N", "H"}  # type: ignore[index]


def test_fhir_bundle_of_a_released_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "results.sqlite"
    counts = released_sample(database)
    out = tmp_path / "result.fhir.json"
    assert (
        run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", "fhir", "-o", out) == 0
    )
    document = json.loads(out.read_text(encoding="utf-8"))
    Bundle.model_validate(document)
    resources = [e["resource"] for e in document["entry"]]
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    assert report["status"] == "final" and report["code"]["coding"][0]["code"] == "24318-8"
    assert report["resultsInterpreter"][0]["display"] == "Ann Lee"
    urls = {
        e["fullUrl"] for e in document["entry"] if e["resource"]["resourceType"] == "Observation"
    }
    assert {r["reference"] for r in report["result"]} == urls
    total = sum(counts.values())
    values = {o["code"]["coding"][0]["code"]: o["valueQuantity"]["value"] for o in observations}
    expected = {EXPECTED_CODES[name]: round(100.0 * n / total, 1) for name, n in counts.items()}
    assert values == expected
    assert all(o["valueQuantity"]["code"] == "%" for o in observations)
    assert all(o["specimen"]["identifier"]["value"] == SAMPLE for o in observations)


def test_a_simulated_sample_never_goes_to_a_laboratory_system(tmp_path: Path) -> None:
    from dataclasses import replace

    from leukoscope.errors import ParameterError
    from leukoscope.report.data import gather_report
    from leukoscope.report.lis import render_fhir, render_hl7

    database = tmp_path / "results.sqlite"
    released_sample(database)
    with ResultStore(database, read_only=True) as store:
        data = gather_report(store, SAMPLE)
    assert "ORU^R01" in render_hl7(data)  # released and real: exported
    simulated = replace(data, summary=data.summary.model_copy(update={"simulated": True}))
    for render in (render_hl7, render_fhir):
        with pytest.raises(ParameterError, match="is simulated: it is never sent"):
            render(simulated)


def test_message_ids_and_times_are_what_the_docs_say(tmp_path: Path) -> None:
    """MSH-10 is stable for one release and new for the next; OBR-22 is the release time, OBX-14
    the acquisition time (the sample's start), both read back with python-hl7."""
    from datetime import datetime, timezone

    from leukoscope.report.data import gather_report
    from leukoscope.report.lis import render_hl7

    database = tmp_path / "results.sqlite"
    released_sample(database)

    def message() -> hl7.Message:
        with ResultStore(database, read_only=True) as store:
            data = gather_report(store, SAMPLE)
        return hl7.parse(render_hl7(data))

    first, again = message(), message()
    assert str(first.segment("MSH")[10]) == str(again.segment("MSH")[10])  # the same release
    with ResultStore(database, read_only=True) as store:
        (row,) = store.samples()
    with ReviewStore(database, read_only=True) as reviews:
        (release,) = reviews.releases(row.run_id, SAMPLE)

    def stamp(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y%m%d%H%M%S+0000")

    assert str(first.segment("OBR")[22]) == stamp(release.released_s)
    assert {str(obx[14]) for obx in first.segments("OBX")} == {stamp(row.started_s)}
    with ReviewStore(database) as reviews:  # reopened and released again: a new message id
        state = reviews.state(row.run_id, SAMPLE)
        assert state is not None
        state = reviews.reopen(row.run_id, SAMPLE, reviewer="Bo Chen", reason="recheck",
                               version=state.version)  # fmt: skip
        reviews.release(row.run_id, SAMPLE, reviewer="Bo Chen", version=state.version)
    corrected = message()
    assert str(corrected.segment("MSH")[10]) != str(first.segment("MSH")[10])
    assert str(corrected.segment("OBR")[3]) == str(first.segment("OBR")[3])  # the same result
