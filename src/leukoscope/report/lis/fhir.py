"""A released differential as a FHIR R4 Bundle, validated by fhir.resources (R4B models: the
resources used here are the same in R4 and R4B).

With the laboratory's order: a `transaction` Bundle (Patient and Specimen by conditional update
on their identifiers, DiagnosticReport and Observations by id, so a resend or a correction updates
the same resources). Without one (a file export): a `collection` Bundle without a patient.
Effective time: when the sample was acquired; issued: when it was released.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from leukoscope import __version__
from leukoscope.report.data import ReportData
from leukoscope.report.flags import RangeFlag
from leukoscope.report.lis.common import (
    LOINC_SYSTEM,
    NRBC_LOINC,
    NRBC_UNIT,
    PANEL,
    UCUM_SYSTEM,
    Order,
    Release,
    acquired,
    coded_classes,
    count_note,
    nrbc_note,
    releasable,
    report_uuid,
    result_notes,
    rows_by_class,
)

SAMPLE_SYSTEM = "urn:leukoscope:sample"
PATIENT_SYSTEM = "urn:leukoscope:patient-id"
PLACER_SYSTEM = "urn:leukoscope:placer-order"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
INTERPRETATION = {RangeFlag.BELOW: ("L", "Low"), RangeFlag.ABOVE: ("H", "High"),
                  RangeFlag.WITHIN: ("N", "Normal")}  # fmt: skip
GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}


def _quantity(value: float) -> dict[str, Any]:
    return {"value": round(value, 1), "unit": "%", "system": UCUM_SYSTEM, "code": "%"}


def _patient(order: Order) -> dict[str, Any]:
    key = f"{order.patient_authority}|{order.patient_id}"
    identifier: dict[str, Any] = {"system": PATIENT_SYSTEM, "value": order.patient_id}
    if order.patient_authority:
        identifier["assigner"] = {"display": order.patient_authority}
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"leukoscope:patient:{key}")),
        "identifier": [identifier],
    }
    name = {k: v for k, v in (("family", order.family_name),) if v}
    if order.given_name:
        name["given"] = [order.given_name]  # type: ignore[assignment]
    if name:
        resource["name"] = [name]
    if len(order.birth_date) == 8:
        b = order.birth_date
        resource["birthDate"] = f"{b[:4]}-{b[4:6]}-{b[6:]}"
    if order.sex in GENDER:
        resource["gender"] = GENDER[order.sex]
    return resource


def _observation(
    data: ReportData,
    release: Release,
    ident: str,
    links: dict[str, Any],
    loinc: tuple[str, str],
    value: dict[str, Any],
    note: str,
) -> dict[str, Any]:
    """One laboratory Observation of the release: its LOINC code, value and note."""
    code, name = loinc
    return {
        "resourceType": "Observation",
        "id": ident,
        "meta": {"versionId": str(release.record.release_no)},
        "status": release.fhir_observation_status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC_SYSTEM, "code": code, "display": name}]},
        **links,
        "effectiveDateTime": acquired(data).isoformat(),
        "issued": release.released.isoformat(),
        "performer": [{"display": release.reviewer}],
        "valueQuantity": value,
        "note": [{"text": note}],
    }


def _observations(
    data: ReportData, release: Release, base: uuid.UUID, links: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = rows_by_class(data)
    lines = {line.count.cell_class: line for line in data.lines}
    out = []
    for cell_class, loinc in coded_classes(data).items():
        row, line = rows[cell_class], lines.get(cell_class)
        ident = str(uuid.uuid5(base, cell_class.value))
        note = count_note(row, data.summary.cells_counted)
        resource = _observation(data, release, ident, links, loinc, _quantity(row.percent), note)
        if line is not None:
            resource["referenceRange"] = [
                {
                    "low": _quantity(line.reference.low_percent),
                    "high": _quantity(line.reference.high_percent),
                }
            ]
            if line.flag in INTERPRETATION:
                flag, display = INTERPRETATION[line.flag]
                resource["interpretation"] = [
                    {
                        "coding": [
                            {"system": INTERPRETATION_SYSTEM, "code": flag, "display": display}
                        ]
                    }
                ]
        out.append({"fullUrl": f"urn:uuid:{ident}", "resource": resource})
    if data.summary.nrbc:
        out.append(_nrbc_observation(data, release, base, links))
    return out


def _nrbc_observation(
    data: ReportData, release: Release, base: uuid.UUID, links: dict[str, Any]
) -> dict[str, Any]:
    """Nucleated red cells per 100 white cells (a model that names them found some)."""
    ident = str(uuid.uuid5(base, "NRBC"))
    unit, text = NRBC_UNIT
    value = {
        "value": round(data.summary.nrbc_per_100_wbc, 1),
        "unit": text,
        "system": UCUM_SYSTEM,
        "code": unit,
    }
    resource = _observation(data, release, ident, links, NRBC_LOINC, value, nrbc_note(data))
    return {"fullUrl": f"urn:uuid:{ident}", "resource": resource}


def fhir_bundle(
    data: ReportData, now: datetime | None = None, *, order: Order | None = None
) -> dict[str, Any]:
    """The released differential as a FHIR R4 Bundle (a transaction with the order, a
    collection without), validated by fhir.resources before it is returned."""
    from fhir.resources.R4B.bundle import Bundle

    release = releasable(data)
    reviewer, released = release.reviewer, release.released
    now = now or datetime.now(timezone.utc)
    base = report_uuid(data, release)
    identifier = {"system": SAMPLE_SYSTEM, "value": data.sample_id}
    links: dict[str, Any] = {"specimen": {"identifier": identifier}}
    extra: list[dict[str, Any]] = []
    if order is not None:
        patient = _patient(order)
        specimen_id = str(uuid.uuid5(base, "specimen"))
        subject = {"reference": f"urn:uuid:{patient['id']}"}
        specimen = {
            "resourceType": "Specimen",
            "id": specimen_id,
            "identifier": [identifier],
            "accessionIdentifier": identifier,
            "type": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "119297000",
                        "display": "Blood specimen",
                    }
                ]
            },
            "subject": subject,
        }
        links = {"subject": subject, "specimen": {"reference": f"urn:uuid:{specimen_id}"}}
        extra = [
            {"fullUrl": subject["reference"], "resource": patient},
            {"fullUrl": links["specimen"]["reference"], "resource": specimen},
        ]
    observations = _observations(data, release, base, links)
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(base),
        "meta": {"versionId": str(release.record.release_no)},
        "status": release.fhir_report_status,
        "identifier": [identifier],
        "code": {"coding": [{"system": LOINC_SYSTEM, "code": PANEL[0], "display": PANEL[1]}]},
        "effectiveDateTime": acquired(data).isoformat(),
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
    }
    if order is not None:
        report["subject"] = links["subject"]
        report["specimen"] = [links["specimen"]]
        if order.placer_order:
            report["basedOn"] = [
                {"identifier": {"system": PLACER_SYSTEM, "value": order.placer_order}}
            ]
    entries = [*extra, {"fullUrl": f"urn:uuid:{base}", "resource": report}, *observations]
    if release.replaces is not None:
        entries.append(_provenance(base, release))
    kind = "collection"
    if order is not None:
        kind = "transaction"
        for entry in entries:
            entry["request"] = _request(entry["resource"], order, data.sample_id)
    bundle = {"resourceType": "Bundle", "type": kind, "timestamp": now.isoformat(),
              "entry": entries}  # fmt: skip
    Bundle.model_validate(bundle)  # raises on anything FHIR R4(B) does not allow
    return bundle


def _request(resource: dict[str, Any], order: Order, sample_id: str) -> dict[str, str]:
    """A transaction entry's request: a conditional update on the identifier (Patient,
    Specimen), an update by id (DiagnosticReport, Observation), a create (Provenance)."""
    kind = resource["resourceType"]
    if kind == "Patient":
        return {"method": "PUT", "url": f"Patient?identifier={quote(PATIENT_SYSTEM)}|"
                f"{quote(order.patient_id, safe='')}"}  # fmt: skip
    if kind == "Specimen":
        return {"method": "PUT", "url": f"Specimen?identifier={quote(SAMPLE_SYSTEM)}|"
                f"{quote(sample_id, safe='')}"}  # fmt: skip
    if kind == "Provenance":
        return {"method": "POST", "url": "Provenance"}
    return {"method": "PUT", "url": f"{kind}/{resource['id']}"}


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


def render_fhir(
    data: ReportData, now: datetime | None = None, *, order: Order | None = None
) -> str:
    """The FHIR Bundle as JSON text."""
    return json.dumps(fhir_bundle(data, now, order=order), indent=2) + "\n"
