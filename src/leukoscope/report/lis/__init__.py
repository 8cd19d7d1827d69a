"""A released differential for a laboratory information system: HL7 v2.5.1 ORU^R01 and FHIR R4.

Only a sample a technologist has released (results/review_store.py) leaves this way, and never a simulated
one. The five percentages are reported with the LOINC terms of the Manual Differential panel
(24318-8): after review the differential is a person's count, not an analyser's. Each result also
carries its count of the cells counted and the binomial 95 % interval, its reference range and
abnormal flag, and the report says who released it and when. With the laboratory's order
(`Order`, from the worklist: leukoscope.lis) the messages name the patient, the order and the
specimen. common.py: the release and its notes; hl7.py: the ORU^R01; fhir.py: the Bundle.
"""

from __future__ import annotations

from leukoscope.report.lis.common import (
    LOINC,
    PANEL,
    Order,
    Parties,
    Release,
    loinc_check_digit,
    message_id,
    releasable,
    report_uuid,
    result_notes,
)
from leukoscope.report.lis.fhir import fhir_bundle, render_fhir
from leukoscope.report.lis.hl7 import render_hl7

__all__ = [
    "LOINC",
    "PANEL",
    "Order",
    "Parties",
    "Release",
    "fhir_bundle",
    "loinc_check_digit",
    "message_id",
    "releasable",
    "render_fhir",
    "render_hl7",
    "report_uuid",
    "result_notes",
]
