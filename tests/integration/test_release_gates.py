"""The lab's release rules, enforced by the review store on a real results database, and what a
laboratory system receives for each kind of release (read back with independent parsers: python-hl7
and fhir.resources)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle

from leukoscope.errors import ParameterError, StorageError
from leukoscope.report.data import gather_report
from leukoscope.report.export import report_document
from leukoscope.report.lis import render_fhir, render_hl7
from leukoscope.report.render import render_report
from leukoscope.results.release_gates import ReleaseRefused
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore

from .release_helpers import give_evidence
from .review_helpers import finished_sample

SAMPLE = "S-1"


def _open(database: Path, run: str) -> None:
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)


def _release(database: Path, run: str, **kwargs: object) -> None:
    with ReviewStore(database) as reviews:
        state = reviews.state(run, SAMPLE)
        assert state is not None
        reviews.release(run, SAMPLE, reviewer="Ann Lee", version=state.version, **kwargs)  # type: ignore[arg-type]


def _refused(database: Path, run: str, match: str, **kwargs: object) -> None:
    with pytest.raises(ReleaseRefused, match=match) as refused:
        _release(database, run, **kwargs)
    assert "\n" not in str(refused.value)
    with ReviewStore(database, read_only=True) as reviews:
        state = reviews.state(run, SAMPLE)
        assert state is not None and not state.released
        assert reviews.releases(run, SAMPLE) == []


def _data(database: Path):  # type: ignore[no-untyped-def]
    with ResultStore(database, read_only=True) as store:
        return gather_report(store, SAMPLE)


@pytest.fixture
def real(tmp_path: Path) -> tuple[Path, str]:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE, cells=12, target=10)
    _open(database, run)
    return database, run


def test_a_model_without_a_passing_validation_for_this_rig_is_never_released(
    real: tuple[Path, str],
) -> None:
    database, run = real
    give_evidence(database, run, SAMPLE, validate=False)
    _refused(database, run, "has no passing validation for this rig set-up")
    give_evidence(database, run, SAMPLE, verdict="FAIL")
    _refused(database, run, "has no passing validation")
    give_evidence(database, run, SAMPLE, simulated_validation=True)  # PASS on simulated fields
    _refused(database, run, "has no passing validation")
    with pytest.raises(ParameterError, match="not released"):
        render_hl7(_data(database))
    give_evidence(database, run, SAMPLE)
    assert 'id="review">check flags' in render_report(_data(database), "html")
    _release(database, run)
    page = render_report(_data(database), "html")  # a person checked the flags: no badge
    assert 'id="review"' not in page and 'id="released">Released by Ann Lee' in page
    with ReviewStore(database, read_only=True) as reviews:
        (record,) = reviews.releases(run, SAMPLE)
    assert (record.kind, record.release_no, record.reviewer) == ("final", 1, "Ann Lee")
    assert record.differential["counted"] == 10 and record.validation_id > 0


def test_a_validation_on_another_rig_does_not_count(real: tuple[Path, str]) -> None:
    database, run = real
    give_evidence(database, run, SAMPLE)
    with sqlite3.connect(database) as db:  # the sample's fields came from another set-up
        db.execute("UPDATE samples SET settings_digest='ffffffffffffffff'")
    db.close()
    _refused(database, run, "has no passing validation for this rig set-up")
    with sqlite3.connect(database) as db:  # fields from two set-ups: bound to no validation
        db.execute("UPDATE samples SET settings_digest=''")
    db.close()
    _refused(database, run, "rig set-up of its fields is unknown or mixed")


def test_a_simulated_sample_is_never_released(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE, cells=12, target=10)
    with sqlite3.connect(database) as db:
        db.execute("UPDATE samples SET simulated=1")
    db.close()
    give_evidence(database, run, SAMPLE)
    _open(database, run)
    _refused(database, run, "is simulated: it is never released")
    _refused(database, run, "is simulated", partial=True, reason="only what we have")


def test_no_counted_cells_is_never_released(real: tuple[Path, str]) -> None:
    database, run = real
    give_evidence(database, run, SAMPLE)
    with ReviewStore(database) as reviews:
        for cell in reviews.cells(run, SAMPLE):
            reviews.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "ARTEFACT",
                               reviewer="Ann Lee", version=cell.version)  # fmt: skip
    _refused(database, run, "has no counted cells")
    _refused(database, run, "has no counted cells", partial=True, reason="slide was damaged")


def test_an_incomplete_sample_is_released_only_as_partial_with_a_reason(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE, cells=6, target=10)  # below its target
    give_evidence(database, run, SAMPLE)
    _open(database, run)
    _refused(
        database, run, "cannot be released as final: 6 cells were counted, below its target of 10"
    )
    _refused(database, run, "a partial release needs a reason", partial=True, reason=" ")
    _release(database, run, partial=True, reason="slide exhausted at 6 cells")
    data = _data(database)
    text = render_hl7(data)
    message = hl7.parse(text)
    assert str(message.segment("OBR")[25]) == "P"
    assert {str(obx[11]) for obx in message.segments("OBX")} == {"P"}
    assert any("Partial result: slide exhausted at 6 cells" in str(n[3])
               for n in message.segments("NTE"))  # fmt: skip
    bundle = json.loads(render_fhir(data))
    Bundle.model_validate(bundle)
    kinds = {e["resource"]["resourceType"]: e["resource"]["status"] for e in bundle["entry"]}
    assert kinds == {"DiagnosticReport": "partial", "Observation": "preliminary"}


def test_a_reopened_and_released_again_sample_goes_out_as_a_correction(
    real: tuple[Path, str],
) -> None:
    database, run = real
    give_evidence(database, run, SAMPLE)
    _release(database, run)
    first = _data(database)
    first_hl7, first_fhir = hl7.parse(render_hl7(first)), json.loads(render_fhir(first))
    assert str(first_hl7.segment("OBR")[25]) == "F"
    with ReviewStore(database) as reviews:
        state = reviews.state(run, SAMPLE)
        assert state is not None
        reviews.reopen(run, SAMPLE, reviewer="Bo Chen", reason="wrong class on cell 0/0",
                       version=state.version)  # fmt: skip
        cell = reviews.cells(run, SAMPLE)[0]
        reviews.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "BAS", reviewer="Bo Chen",
                           version=cell.version)  # fmt: skip
    _release(database, run)
    with ReviewStore(database, read_only=True) as reviews:
        releases = reviews.releases(run, SAMPLE)
    assert [r.release_no for r in releases] == [1, 2]
    assert releases[0].differential != releases[1].differential  # both versions kept
    data = _data(database)
    release = report_document(data)["review"]["release"]
    assert (release["kind"], release["release_no"], release["correction"]) == ("final", 2, True)
    assert release["chain_head"] == releases[1].chain_head and len(release["chain_head"]) == 64
    assert "(correction 2)" in render_report(data, "html")
    message = hl7.parse(render_hl7(data))
    assert str(message.segment("OBR")[25]) == "C"
    assert [str(obx[11]) for obx in message.segments("OBX")] == ["C"] * 5
    assert str(message.segment("OBR")[3]) == str(first_hl7.segment("OBR")[3])  # same result
    notes = " ".join(str(n[3]) for n in message.segments("NTE"))
    assert "Corrected result: replaces release 1" in notes and "wrong class on cell 0/0" in notes
    bundle = json.loads(render_fhir(data))
    Bundle.model_validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    before = next(
        e["resource"] for e in first_fhir["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )  # fmt: skip
    assert report["status"] == "corrected" and report["id"] == before["id"]
    assert (report["meta"]["versionId"], before["meta"]["versionId"]) == ("2", "1")
    assert {r["status"] for r in resources if r["resourceType"] == "Observation"} == {"corrected"}
    provenance = next(r for r in resources if r["resourceType"] == "Provenance")
    assert provenance["entity"][0]["role"] == "revision"
    assert (
        provenance["entity"][0]["what"]["reference"]
        == f"DiagnosticReport/{report['id']}/_history/1"
    )


def test_released_versions_cannot_be_rewritten_and_a_changed_result_is_not_sent(
    real: tuple[Path, str],
) -> None:
    database, run = real
    give_evidence(database, run, SAMPLE)
    _release(database, run)
    with sqlite3.connect(database) as db:
        for sql in ("UPDATE review_releases SET reviewer='Eve'", "DELETE FROM review_releases"):
            with pytest.raises(sqlite3.IntegrityError, match="keeps every released version"):
                db.execute(sql)
        with pytest.raises(sqlite3.IntegrityError, match="never removed"):
            db.execute("DELETE FROM review_cells WHERE fov=0 AND cell_index=0")
        db.execute("DROP TRIGGER review_cells_no_delete")  # someone with the file in hand
        db.execute("DELETE FROM review_cells WHERE fov=0 AND cell_index=0")
    db.close()
    with pytest.raises(StorageError, match="changed outside the review"):
        render_hl7(_data(database))


def test_with_verification_required_a_second_different_person_releases(
    real: tuple[Path, str],
) -> None:
    database, run = real
    give_evidence(database, run, SAMPLE)
    with ReviewStore(database) as reviews:
        state = reviews.release(run, SAMPLE, reviewer="Ann Lee", version=0, verification=True)
        assert (state.state, state.submitted_by) == ("open", "Ann Lee")  # submitted, not out
        with pytest.raises(ReleaseRefused, match="a second, different person must verify"):
            reviews.release(run, SAMPLE, reviewer="ann lee", version=state.version,
                            verification=True)  # fmt: skip
        cell = reviews.cells(run, SAMPLE)[0]  # a change after submission drops it
        reviews.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "MO", reviewer="Ann Lee",
                           version=cell.version)  # fmt: skip
        state = reviews.state(run, SAMPLE)  # type: ignore[assignment]
        assert state is not None and state.submitted_by == ""
        state = reviews.release(run, SAMPLE, reviewer="Ann Lee", version=state.version,
                                verification=True)  # fmt: skip
        state = reviews.release(run, SAMPLE, reviewer="Bo Chen", version=state.version,
                                verification=True)  # fmt: skip
        assert (state.state, state.reviewer) == ("released", "Ann Lee")
        (record,) = reviews.releases(run, SAMPLE)
        audit = [(a.from_label, a.to_label, a.reviewer) for a in reviews.audit(run, SAMPLE)
                 if a.action == "release"]  # fmt: skip
    assert (record.reviewer, record.verified_by) == ("Ann Lee", "Bo Chen")
    assert audit[-2:] == [
        ("open", "submitted for verification", "Ann Lee"),
        ("submitted for verification", "released", "Bo Chen"),
    ]
    notes = [str(n[3]) for n in hl7.parse(render_hl7(_data(database))).segments("NTE")]
    assert "Released by Ann Lee, verified by Bo Chen" in notes
