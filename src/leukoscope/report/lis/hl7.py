"""A released differential as one HL7 v2.5.1 ORU^R01, built and validated by hl7apy (strict).

With the laboratory's order: PID (patient), ORC and OBR-2 (the LIS's order number), OBR-3 and
SPM-2 (the accession), OBR-4 (the ordered test). Without one (a file export of a sample nobody
ordered): MSH, OBR, OBX and NTE only. Every OBX carries its reference range (OBX-7) and abnormal
flag (OBX-8) from the configured ranges.
"""

from __future__ import annotations

from datetime import datetime, timezone

from leukoscope import __version__
from leukoscope.errors import ParameterError
from leukoscope.report.data import ClassLine, ReportData
from leukoscope.report.flags import RangeFlag
from leukoscope.report.lis.common import (
    NRBC_LOINC,
    NRBC_UNIT,
    PANEL,
    Order,
    Parties,
    acquired,
    coded_classes,
    count_note,
    escape,
    hl7_time,
    message_id,
    nrbc_note,
    releasable,
    result_notes,
    rows_by_class,
)

ABNORMAL = {RangeFlag.BELOW: "L", RangeFlag.ABOVE: "H", RangeFlag.WITHIN: "N"}  # table 0078
SPECIMEN_TYPE = "BLD^Whole blood^HL70487"


def _lines(data: ReportData) -> dict[str, ClassLine]:
    return {line.count.cell_class.value: line for line in data.lines}


def _patient(message: object, order: Order) -> None:
    patient = message.add_group("ORU_R01_PATIENT")  # type: ignore[attr-defined]
    pid = patient.pid
    pid.pid_1 = "1"
    pid.pid_3 = f"{escape(order.patient_id)}^^^{escape(order.patient_authority)}^MR"
    pid.pid_5 = f"{escape(order.family_name)}^{escape(order.given_name)}"
    if order.birth_date:
        pid.pid_7 = order.birth_date
    if order.sex:
        pid.pid_8 = order.sex


def _nrbc(group: object, data: ReportData, index: int, status: str, reviewer: str) -> None:
    """The OBX of nucleated red cells per 100 white cells (a model that names them found some)."""
    observation = group.add_group("ORU_R01_OBSERVATION")  # type: ignore[attr-defined]
    obx = observation.obx
    obx.obx_1 = str(index)
    obx.obx_2 = "NM"
    obx.obx_3 = f"{NRBC_LOINC[0]}^{NRBC_LOINC[1]}^LN"
    obx.obx_5 = f"{data.summary.nrbc_per_100_wbc:.1f}"
    obx.obx_6 = f"{escape(NRBC_UNIT[0])}^{NRBC_UNIT[1]}^UCUM"
    obx.obx_11 = status
    obx.obx_14 = hl7_time(acquired(data))
    obx.obx_16 = f"^{escape(reviewer)}"
    note = observation.add_segment("NTE")
    note.nte_1 = "1"
    note.nte_3 = escape(nrbc_note(data))


def render_hl7(
    data: ReportData,
    now: datetime | None = None,
    *,
    order: Order | None = None,
    parties: Parties | None = None,
) -> str:
    """The released differential as one HL7 v2.5.1 ORU^R01 message (segments end with CR)."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.core import Message

    release = releasable(data)
    reviewer, released, status = release.reviewer, release.released, release.hl7_status
    now = now or datetime.now(timezone.utc)
    parties = parties or Parties()
    message = Message("ORU_R01", version="2.5.1", validation_level=VALIDATION_LEVEL.STRICT)
    message.msh.msh_3 = f"{escape(parties.sending_application)}^{escape(__version__)}"
    if parties.sending_facility:
        message.msh.msh_4 = escape(parties.sending_facility)
    if parties.receiving_application:
        message.msh.msh_5 = escape(parties.receiving_application)
    if parties.receiving_facility:
        message.msh.msh_6 = escape(parties.receiving_facility)
    message.msh.msh_7 = hl7_time(now)
    message.msh.msh_9 = "ORU^R01^ORU_R01"
    message.msh.msh_10 = message_id(data, released)
    message.msh.msh_11 = "P"
    message.msh.msh_12 = "2.5.1"
    result = message.add_group("ORU_R01_PATIENT_RESULT")
    if order is not None:
        _patient(result, order)
    group = result.add_group("ORU_R01_ORDER_OBSERVATION")
    if order is not None:
        group.orc.orc_1 = "RE"
        if order.placer_order:
            group.orc.orc_2 = escape(order.placer_order)
        group.orc.orc_3 = escape(data.sample_id)
    obr = group.obr
    obr.obr_1 = "1"
    if order is not None and order.placer_order:
        obr.obr_2 = escape(order.placer_order)
    obr.obr_3 = escape(data.sample_id)  # filler order number: the accession (sample id)
    test = (
        (order.test_code, order.test_name, order.test_system)
        if order is not None
        else (PANEL[0], PANEL[1], "LN")
    )
    obr.obr_4 = "^".join(escape(part) for part in test)
    obr.obr_7 = hl7_time(acquired(data))
    obr.obr_22 = hl7_time(released)
    obr.obr_25 = status
    for number, text in enumerate(result_notes(data, release), start=1):
        note = group.add_segment("NTE")
        note.nte_1 = str(number)
        note.nte_3 = escape(text)
    rows, lines = rows_by_class(data), _lines(data)
    coded = coded_classes(data)
    for index, (cell_class, (code, name)) in enumerate(coded.items(), start=1):
        row, line = rows[cell_class], lines.get(cell_class.value)
        observation = group.add_group("ORU_R01_OBSERVATION")
        obx = observation.obx
        obx.obx_1 = str(index)
        obx.obx_2 = "NM"
        obx.obx_3 = f"{code}^{name}^LN"
        obx.obx_5 = f"{row.percent:.1f}"
        obx.obx_6 = "%^percent^UCUM"
        if line is not None:
            obx.obx_7 = f"{line.reference.low_percent:.1f}-{line.reference.high_percent:.1f}"
            if line.flag in ABNORMAL:
                obx.obx_8 = ABNORMAL[line.flag]
        obx.obx_11 = status
        obx.obx_14 = hl7_time(acquired(data))
        obx.obx_16 = f"^{escape(reviewer)}"
        note = observation.add_segment("NTE")
        note.nte_1 = "1"
        note.nte_3 = escape(count_note(row, data.summary.cells_counted))
    if data.summary.nrbc:
        _nrbc(group, data, len(coded) + 1, status, reviewer)
    if order is not None:
        spm = group.add_group("ORU_R01_SPECIMEN").spm
        spm.spm_1 = "1"
        spm.spm_2 = f"^{escape(data.sample_id)}"  # filler-assigned specimen id: the accession
        spm.spm_4 = SPECIMEN_TYPE
    if not message.validate():  # pragma: no cover - strict validation raises instead
        raise ParameterError("the HL7 message does not validate")
    return str(message.to_er7()) + "\r"
