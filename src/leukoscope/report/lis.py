"""A released differential for a laboratory information system: HL7 v2.5.1 ORU^R01 and FHIR R4.

Only a sample a technologist has released (review/store.py) leaves this way, and never a simulated
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
from typing import Any

from leukoscope import __version__
from leukoscope.errors import ParameterError
from leukoscope.report.data import ReportData
from leukoscope.report.review import RELEASED
from leukoscope.review.gates import PARTIAL, Evidence
from leukoscope.review.records import ReleaseRecord
from leukoscope.types import CellClass, ClassCount

PANEL = ("24318-8", "Manual Differential panel - Blood")
LOINC: dict[CellClass, tuple[str, str]] = {
    CellClass.NEU: ("26511-6", "Neutrophils/100 leukocytes in Blood"),
    CellClass.LYM: ("26478-8", "Lymphocytes/100 leukocytes in Blood"),
    CellClass.MO: ("26485-3", "Monocytes/100 leukocytes in Blood"),
    CellClass.EOS: ("26450-7", "Eosinophils/100 leukocytes in Blood"),
    CellClass.BAS: ("30180-4", "Basophils/100 leukocytes in Blood"),
}
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


def _escape(text: str) -> str:
    """HL7 v2 escaping of the delimiters in free text."""
    table = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
    return "".join(table.get(ch, ch) for ch in text).replace("\r", " ").replace("\n", " ")


def _hl7_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def _rows(data: ReportData) -> dict[CellClass, ClassCount]:
    """The reported differential by class."""
    return {row.cell_class: row for row in data.summary.classes}


def _note(row: ClassCount, cells: int) -> str:
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


def render_hl7(data: ReportData, now: datetime | None = None) -> str:
    """The released differential as one HL7 v2.5.1 ORU^R01 message (segments end with CR)."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.core import Message

    release = releasable(data)
    reviewer, released, status = release.reviewer, release.released, release.hl7_status
    now = now or datetime.now(timezone.utc)
    message = Message("ORU_R01", version="2.5.1", validation_level=VALIDATION_LEVEL.STRICT)
    message.msh.msh_3 = f"LEUKOSCOPE^{_escape(__version__)}"
    message.msh.msh_7 = _hl7_time(now)
    message.msh.msh_9 = "ORU^R01^ORU_R01"
    message.msh.msh_10 = message_id(data, released)
    message.msh.msh_11 = "P"
    message.msh.msh_12 = "2.5.1"
    order = message.add_group("ORU_R01_PATIENT_RESULT").add_group("ORU_R01_ORDER_OBSERVATION")
    order.obr.obr_1 = "1"
    order.obr.obr_3 = _escape(data.sample_id)  # filler order number: the sample id
    order.obr.obr_4 = f"{PANEL[0]}^{PANEL[1]}^LN"
    order.obr.obr_7 = _hl7_time(datetime.fromtimestamp(data.started_s, timezone.utc))
    order.obr.obr_22 = _hl7_time(released)
    order.obr.obr_25 = status
    for number, text in enumerate(result_notes(data, release), start=1):
        note = order.add_segment("NTE")
        note.nte_1 = str(number)
        note.nte_3 = _escape(text)
    rows = _rows(data)
    for index, (cell_class, (code, name)) in enumerate(LOINC.items(), start=1):
        row = rows[cell_class]
        observation = order.add_group("ORU_R01_OBSERVATION")
        obx = observation.obx
        obx.obx_1 = str(index)
        obx.obx_2 = "NM"
        obx.obx_3 = f"{code}^{name}^LN"
        obx.obx_5 = f"{row.percent:.1f}"
        obx.obx_6 = "%^percent^UCUM"
        obx.obx_11 = status
        obx.obx_14 = _hl7_time(released)
        obx.obx_16 = f"^{_escape(reviewer)}"
        note = observation.add_segment("NTE")
        note.nte_1 = "1"
        note.nte_3 = _escape(_note(row, data.summary.cells_counted))
    if not message.validate():  # pragma: no cover - strict validation raises instead
        raise ParameterError("the HL7 message does not validate")
    return str(message.to_er7()) + "\r"


def fhir_bundle(data: ReportData, now: datetime | None = None) -> dict[str, Any]:
    """The released differential as a FHIR R4 collection Bundle: one DiagnosticReport and one
    Observation per class, validated by fhir.resources before it is returned."""
    from fhir.resources.R4B.bundle import Bundle

    release = releasable(data)
    reviewer, released = release.reviewer, release.released
    now = now or datetime.now(timezone.utc)
    base = report_uuid(data, release)
    version = {"versionId": str(release.record.release_no)}
    identifier = {"system": "urn:leukoscope:sample", "value": data.sample_id}
    observations = []
    rows = _rows(data)
    for cell_class, (code, name) in LOINC.items():
        row = rows[cell_class]
        observations.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(base, cell_class.value)}",
                "resource": {
                    "resourceType": "Observation",
                    "id": str(uuid.uuid5(base, cell_class.value)),
                    "meta": version,
                    "status": release.fhir_observation_status,
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "observation-category",
                                    "code": "laboratory",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": LOINC_SYSTEM, "code": code, "display": name}]},
                    "specimen": {"identifier": identifier},
                    "effectiveDateTime": released.isoformat(),
                    "issued": released.isoformat(),
                    "performer": [{"display": reviewer}],
                    "valueQuantity": {
                        "value": round(row.percent, 1),
                        "unit": "%",
                        "system": UCUM_SYSTEM,
                        "code": "%",
                    },
                    "note": [{"text": _note(row, data.summary.cells_counted)}],
                },
            }
        )
    report = {
        "fullUrl": f"urn:uuid:{base}",
        "resource": {
            "resourceType": "DiagnosticReport",
            "id": str(base),
            "meta": version,
            "status": release.fhir_report_status,
            "identifier": [identifier],
            "code": {"coding": [{"system": LOINC_SYSTEM, "code": PANEL[0], "display": PANEL[1]}]},
            "effectiveDateTime": released.isoformat(),
            "issued": released.isoformat(),
            "resultsInterpreter": [{"display": reviewer}],
            "result": [{"reference": o["fullUrl"]} for o in observations],
            "conclusion": " ".join(
                [
                    f"{data.summary.cells_counted} white cells classified by leukoscope "
                    f"{__version__}, reviewed and released by {reviewer}.",
                    *(f"{n}." for n in result_notes(data, release)),
                ]
            ),
        },
    }
    entries = [report, *observations]
    if release.replaces is not None:
        entries.append(_provenance(base, release))
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": now.isoformat(),
        "entry": entries,
    }
    Bundle.model_validate(bundle)  # raises on anything FHIR R4(B) does not allow
    return bundle


def _provenance(base: uuid.UUID, release: Release) -> dict[str, Any]:
    """A correction's Provenance: this version of the DiagnosticReport revises the one before,
    by whom and why."""
    assert release.replaces is not None
    before = release.replaces.release_no
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid5(base, f'provenance-{release.record.release_no}')}",
        "resource": {
            "resourceType": "Provenance",
            "target": [
                {"reference": f"DiagnosticReport/{base}/_history/{release.record.release_no}"}
            ],
            "recorded": release.released.isoformat(),
            "activity": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                        "code": "UPDATE",
                    }
                ]
            },
            "reason": [{"text": release.correction_reason or "corrected after review"}],
            "agent": [{"who": {"display": release.reviewer}}],
            "entity": [
                {
                    "role": "revision",
                    "what": {"reference": f"DiagnosticReport/{base}/_history/{before}"},
                }
            ],
        },
    }


def render_fhir(data: ReportData, now: datetime | None = None) -> str:
    """The FHIR Bundle as JSON text."""
    import json

    return json.dumps(fhir_bundle(data, now), indent=2) + "\n"
