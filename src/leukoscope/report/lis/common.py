"""The release a laboratory message carries, its notes and identities (HL7 and FHIR share them).

Only a sample a technologist has released (results/review_store.py) leaves this way, and never a simulated
one. The five percentages are reported with the LOINC terms of the Manual Differential panel
(24318-8): after review the differential is a person's count, not an analyser's. Each result also
carries its count of the cells counted and the binomial 95 % interval (HL7: an NTE after the OBX;
FHIR: Observation.note), and the report says who released it and when.

HL7 is built and checked with hl7apy (strict v2.5.1 validation); FHIR with fhir.resources
(`R4B` models: DiagnosticReport and Observation are the same in R4 and R4B for what is used here).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from leukoscope.errors import ParameterError
from leukoscope.report.data import ReportData
from leukoscope.report.review import RELEASED
from leukoscope.results.release_gates import PARTIAL, Evidence
from leukoscope.results.review_records import ReleaseRecord
from leukoscope.types import CellClass, ClassCount

PANEL = ("24318-8", "Manual Differential panel - Blood")
LOINC: dict[CellClass, tuple[str, str]] = {
    CellClass.NEU: ("26511-6", "Neutrophils/100 leukocytes in Blood"),
    CellClass.LYM: ("26478-8", "Lymphocytes/100 leukocytes in Blood"),
    CellClass.MO: ("26485-3", "Monocytes/100 leukocytes in Blood"),
    CellClass.EOS: ("26450-7", "Eosinophils/100 leukocytes in Blood"),
    CellClass.BAS: ("30180-4", "Basophils/100 leukocytes in Blood"),
}
EXTRA_LOINC: dict[CellClass, tuple[str, str]] = {
    CellClass.IG: ("38518-7", "Immature granulocytes/100 leukocytes in Blood"),
}
"""Classes beyond the five sent when a sample's differential holds them (docs/lis.md); a class
with no term here (BLAST, RL) is named in the result's notes instead."""
NRBC_LOINC = ("19048-8", "Nucleated erythrocytes/100 leukocytes in Blood")
"""Nucleated red cells per 100 white cells: not a share of the differential (docs/lis.md)."""
NRBC_UNIT = ("/100{WBCs}", "per 100 WBC")
"""UCUM code and text of NRBC_LOINC's value."""
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"


def loinc_check_digit(number: str) -> str:
    """LOINC's mod-10 check digit of the code's number part (e.g. '26511' -> '6')."""
    digits = number[::-1]
    odd = int(digits[0::2][::-1]) * 2  # positions 1, 3, 5 ... from the right, doubled
    even = digits[1::2][::-1]
    total = sum(int(d) for d in even + str(odd))
    return str((10 - total % 10) % 10)


@dataclass(frozen=True)
class Order:
    """A laboratory's order for one specimen, from its worklist: the patient and what was asked.
    Text is kept as received (unescaped); the renderers escape it."""

    accession: str  # the specimen's accession number: the sample id it is analysed under
    patient_id: str
    patient_authority: str = ""  # who assigned the patient id (PID-3.4)
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""  # YYYYMMDD, or ""
    sex: str = ""  # HL7 table 0001 (F, M, O, U, A, N), or ""
    placer_order: str = ""  # the LIS's order number (ORC-2 / OBR-2)
    test_code: str = PANEL[0]
    test_name: str = PANEL[1]
    test_system: str = "LN"
    received_s: float = 0.0


@dataclass(frozen=True)
class Parties:
    """Who sends and who receives a message (MSH-3 to MSH-6)."""

    sending_application: str = "LEUKOSCOPE"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""


def acquired(data: ReportData) -> datetime:
    """When the sample was acquired and analysed (its start in its run): the result's effective
    time."""
    return datetime.fromtimestamp(data.started_s, timezone.utc)


@dataclass(frozen=True)
class Release:
    """The release a message carries: who, when, which version of the result and on what
    evidence."""

    reviewer: str
    released: datetime
    record: ReleaseRecord
    first: ReleaseRecord  # the first release of the sample (the result's identity)
    replaces: ReleaseRecord | None  # the release this one corrects
    correction_reason: str  # why the sample was reopened (a correction only)
    evidence: Evidence

    @property
    def hl7_status(self) -> str:
        """HL7 result status (tables 0123 / 0085): C correction, P partial, F final."""
        if self.record.correction:
            return "C"
        return "P" if self.record.kind == PARTIAL else "F"

    @property
    def fhir_report_status(self) -> str:
        """DiagnosticReport.status: corrected, partial or final."""
        if self.record.correction:
            return "corrected"
        return "partial" if self.record.kind == PARTIAL else "final"

    @property
    def fhir_observation_status(self) -> str:
        """Observation.status: corrected, preliminary (a partial release) or final."""
        if self.record.correction:
            return "corrected"
        return "preliminary" if self.record.kind == PARTIAL else "final"


def releasable(data: ReportData) -> Release:
    """The release in force of a released, real sample whose model has a passing validation for
    its rig set-up; ParameterError otherwise (the release rules are checked again here, so a
    result released by an older version or edited in the file never leaves)."""
    review = data.review
    if data.summary.simulated is not False:
        raise ParameterError(
            f"sample {data.sample_id} is simulated: it is never sent to a laboratory system"
            if data.summary.simulated
            else f"sample {data.sample_id}: whether it is simulated was not recorded; not sent"
        )
    if review is None or review.state != RELEASED or review.released_s is None:
        state = review.state if review is not None else "not reviewed"
        raise ParameterError(
            f"sample {data.sample_id} (run {data.run_id[:8]}) is {state}, not released: "
            "review and sign it off first (leukoscope review)"
        )
    record = review.current_release
    if record is None:
        raise ParameterError(
            f"sample {data.sample_id} (run {data.run_id[:8]}) has no release record: reopen it "
            "and release it again"
        )
    evidence = review.evidence
    if evidence is None or evidence.why_not:
        why = evidence.why_not if evidence is not None else "no evidence recorded"
        raise ParameterError(f"sample {data.sample_id} is not sent: {why}")
    if not record.differential.get("counted"):
        raise ParameterError(f"sample {data.sample_id} has no counted cells: nothing to send")
    shown = {row.cell_class.value: row.count for row in data.summary.classes}
    if shown != record.differential.get("counts"):
        raise ParameterError(
            f"sample {data.sample_id}: the stored cells no longer match release "
            f"{record.release_no} (changed after release?): not sent"
        )
    replaces = review.releases[-2] if record.correction else None
    reason = review.reopen_reasons[-1] if record.correction and review.reopen_reasons else ""
    return Release(
        reviewer=record.reviewer,
        released=datetime.fromtimestamp(record.released_s, timezone.utc),
        record=record,
        first=review.releases[0],
        replaces=replaces,
        correction_reason=reason,
        evidence=evidence,
    )


def result_notes(data: ReportData, release: Release) -> list[str]:
    """What goes beside the values: the cells behind them, what review set aside, the evidence,
    and why the result is partial or corrected."""
    counted = release.record.differential
    notes = [
        f"{counted.get('counted', 0)} white cells counted; set aside in review: "
        f"{counted.get('artefacts', 0)} artefact(s), {counted.get('smudges', 0)} smudge "
        f"cell(s); {counted.get('flagged', 0)} counted cell(s) flagged by the classifier"
    ]
    uncoded = uncoded_note(data)
    if uncoded:
        notes.append(f"Counted in the differential, sent without a coded result: {uncoded}")
    validation = release.evidence.validation
    if validation is not None:
        when = datetime.fromtimestamp(validation.created_s, timezone.utc).date().isoformat()
        notes.append(
            f"Classified by model sha256:{release.evidence.model_sha256[:12]}, validated on "
            f"this rig {when} by {validation.validated_by}: {validation.samples} samples, "
            f"accuracy {100 * validation.accuracy:.1f} %, largest bias "
            f"{validation.largest_bias_pp:.1f} pp ({validation.largest_bias_class})"
        )
    if release.record.chain_head:
        notes.append(f"Review record chain head: sha256:{release.record.chain_head}")
    if release.record.verified_by:
        notes.append(f"Released by {release.reviewer}, verified by {release.record.verified_by}")
    if release.record.kind == PARTIAL:
        notes.append(f"Partial result: {release.record.reason}")
    if release.replaces is not None:
        before = datetime.fromtimestamp(release.replaces.released_s, timezone.utc)
        why = f"; reason: {release.correction_reason}" if release.correction_reason else ""
        notes.append(
            f"Corrected result: replaces release {release.replaces.release_no} of "
            f"{before.isoformat(timespec='seconds')} by {release.replaces.reviewer}{why}"
        )
    return notes


def escape(text: str) -> str:
    """HL7 v2 escaping of the delimiters in free text."""
    table = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
    return "".join(table.get(ch, ch) for ch in text).replace("\r", " ").replace("\n", " ")


def hl7_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def rows_by_class(data: ReportData) -> dict[CellClass, ClassCount]:
    """The reported differential by class."""
    return {row.cell_class: row for row in data.summary.classes}


def coded_classes(data: ReportData) -> dict[CellClass, tuple[str, str]]:
    """The classes sent as results, with their LOINC code and name: the five, then each class of
    EXTRA_LOINC the sample's differential holds."""
    held = rows_by_class(data)
    return {**LOINC, **{c: term for c, term in EXTRA_LOINC.items() if c in held}}


def uncoded_note(data: ReportData) -> str:
    """A note naming the counted classes no LOINC term is sent for ('' when none)."""
    coded = coded_classes(data)
    rows = [row for row in data.summary.classes if row.cell_class not in coded]
    return "; ".join(
        f"{row.cell_class.value}: {row.percent:.1f} % ({count_note(row, data.summary.cells_counted)})"
        for row in rows
    )


def nrbc_note(data: ReportData) -> str:
    """The count behind NRBC/100 WBC."""
    summary = data.summary
    return f"{summary.nrbc} nucleated red cells beside {summary.cells_counted} white cells counted"


def count_note(row: ClassCount, cells: int) -> str:
    return (
        f"{row.count} of {cells} cells; binomial 95% CI "
        f"{row.ci_low_percent:.1f}-{row.ci_high_percent:.1f} %"
    )


def message_id(data: ReportData, released: datetime) -> str:
    """A stable id of one release of one sample (the same release gives the same id)."""
    key = f"{data.run_id}|{data.sample_id}|{released.isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def report_uuid(data: ReportData, release: Release) -> uuid.UUID:
    """The result's identity: the same for every release of the sample (a correction updates
    the same DiagnosticReport)."""
    first = datetime.fromtimestamp(release.first.released_s, timezone.utc)
    return uuid.uuid5(uuid.NAMESPACE_URL, f"leukoscope:{message_id(data, first)}")
