"""The worklist: orders from the laboratory system (HL7 OML^O33 / ORM^O01, or a CSV file), checked
field by field, kept by accession; what is refused is kept too, with its one-line reason.

An order's accession is the sample id the specimen is acquired and analysed under (OML^O33:
SPM-2, the placer then the filler specimen id; ORM^O01: OBR-3, else ORC-3). Patient ids and
order numbers must be free of HL7 delimiters and control characters (refused otherwise); names
may hold any printable text and are escaped on the way out.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from leukoscope.errors import LisError
from leukoscope.ids import SAMPLE_ID_RULE, is_sample_id
from leukoscope.lis.db import RAW_LIMIT, has_table
from leukoscope.report.lis import PANEL, Order
from leukoscope.results.connection import connect

MESSAGE_TYPES = {("OML", "O33"), ("ORM", "O01")}
NEW, CHANGE, CANCEL = "NW", "XO", "CA"
DELIMITERS = set("|^~\\&")
SEXES = {"", "F", "M", "O", "U", "A", "N"}
CSV_COLUMNS = ("accession", "patient_id", "patient_authority", "family_name", "given_name",
               "birth_date", "sex", "placer_order", "test_code", "test_name")  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Received:
    """One order as received: what to do with it (NW/XO: file it; CA: cancel it) and the order."""

    control: str
    order: Order


def _code(value: str, what: str, limit: int = 64) -> str:
    """An identifier: at most `limit` characters, no HL7 delimiter, no control character."""
    if len(value) > limit:
        raise LisError(f"{what} is longer than {limit} characters")
    if DELIMITERS & set(value) or _CONTROL.search(value):
        raise LisError(
            f"{what} {value!r} holds an HL7 delimiter (| ^ ~ \\ &) or a control character: "
            "refused (identifiers must be plain text)"
        )
    return value


def _text(value: str, what: str, limit: int = 100) -> str:
    if len(value) > limit or _CONTROL.search(value):
        raise LisError(f"{what} is longer than {limit} characters or holds a control character")
    return value


def check_order(fields: dict[str, str], received_s: float) -> Order:
    """An Order from named text fields, each checked; LisError naming the first bad one."""
    accession = fields.get("accession", "")
    if not is_sample_id(accession):
        raise LisError(f"accession {accession!r} is not allowed: use {SAMPLE_ID_RULE}")
    patient_id = _code(fields.get("patient_id", ""), "patient id")
    if not patient_id:
        raise LisError(f"order for accession {accession}: no patient id")
    birth = fields.get("birth_date", "")[:8]
    if birth and not re.fullmatch(r"\d{8}", birth):
        raise LisError(f"birth date {birth!r} is not YYYYMMDD")
    sex = fields.get("sex", "")
    if sex not in SEXES:
        raise LisError(f"sex {sex!r} is not one of F, M, O, U, A, N")
    return Order(
        accession=accession,
        patient_id=patient_id,
        patient_authority=_code(fields.get("patient_authority", ""), "assigning authority"),
        family_name=_text(fields.get("family_name", ""), "family name"),
        given_name=_text(fields.get("given_name", ""), "given name"),
        birth_date=birth,
        sex=sex,
        placer_order=_code(fields.get("placer_order", ""), "placer order number"),
        test_code=_code(fields.get("test_code") or PANEL[0], "test code"),
        test_name=_text(fields.get("test_name") or PANEL[1], "test name"),
        test_system=_code(fields.get("test_system") or "LN", "test coding system", 20),
        received_s=received_s,
    )


def _get(segment: Any, field: int, component: int = 1) -> str:
    """One component of one field, unescaped ('' when absent)."""
    try:
        return str(segment.extract_field(1, field, 1, component))
    except IndexError:
        return ""


def parse_message(text: str) -> tuple[str, list[Received]]:
    """The control id (MSH-10) and orders of one OML^O33 or ORM^O01 message; LisError with one
    line when it is malformed."""
    import hl7

    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text.startswith("MSH|"):
        raise LisError("not an HL7 v2 message: it does not start with MSH|")
    try:
        message = hl7.parse(text)
        msh = message.segment("MSH")
    except Exception as exc:  # python-hl7 raises many kinds on bad input
        raise LisError(f"malformed HL7: {exc}") from None
    kind = (_get(msh, 9, 1), _get(msh, 9, 2))
    control_id = _get(msh, 10)
    if kind not in MESSAGE_TYPES:
        raise LisError(f"message type {'^'.join(kind)!r} is not an order (OML^O33 or ORM^O01)")
    if not control_id:
        raise LisError("MSH-10 (message control id) is empty")
    now = time.time()
    fields: dict[str, str] = {}
    control = NEW
    orders: list[Received] = []
    for segment in message:
        name = str(segment[0])
        if name == "PID":
            fields = {"patient_id": _get(segment, 3, 1), "patient_authority": _get(segment, 3, 4),
                      "family_name": _get(segment, 5, 1), "given_name": _get(segment, 5, 2),
                      "birth_date": _get(segment, 7), "sex": _get(segment, 8)}  # fmt: skip
        elif name == "SPM":
            fields["accession"] = _get(segment, 2, 1) or _get(segment, 2, 2)
        elif name == "ORC":
            control = _get(segment, 1) or NEW
            fields["placer_order"] = _get(segment, 2)
            fields.setdefault("orc_accession", _get(segment, 3))
        elif name == "OBR":
            if kind == ("ORM", "O01") or not fields.get("accession"):
                fields["accession"] = _get(segment, 3) or fields.get("orc_accession", "")
            fields["placer_order"] = _get(segment, 2) or fields.get("placer_order", "")
            fields.update(test_code=_get(segment, 4, 1), test_name=_get(segment, 4, 2),
                          test_system=_get(segment, 4, 3))  # fmt: skip
            if control not in (NEW, CHANGE, CANCEL):
                raise LisError(f"order control {control!r} is not NW, XO or CA")
            orders.append(Received(control, check_order(fields, now)))
    if not orders:
        raise LisError("the message holds no order (no OBR segment)")
    return control_id, orders


def split_messages(text: str) -> list[str]:
    """The HL7 messages of a file: each starts with a line beginning MSH|."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    parts = re.split(r"\r(?=MSH\|)", text.strip("\r\x0b\x1c"))
    return [p.strip("\r\x0b\x1c") for p in parts if p.strip()]


def parse_csv(text: str) -> list[tuple[int, Order | LisError, str]]:
    """Each data row of a worklist CSV: (line number, its order or why it is refused, the row)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    if unknown or not {"accession", "patient_id"} <= set(header):
        raise LisError(
            f"worklist CSV columns {header}: expected accession, patient_id and any of "
            f"{', '.join(CSV_COLUMNS[2:])}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    now = time.time()
    out: list[tuple[int, Order | LisError, str]] = []
    for row in reader:
        line = reader.line_num
        raw = ",".join(str(v) for v in row.values())
        values = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        if None in row:
            out.append((line, LisError("more values than columns"), raw))
            continue
        try:
            out.append((line, check_order(values, now), raw))
        except LisError as exc:
            out.append((line, exc, raw))
    return out


def store(db: sqlite3.Connection, received: list[Received], source: str, control_id: str) -> None:
    """File the orders of one message in one transaction (NW/XO: insert or replace; CA: cancel,
    LisError for an accession with no order, nothing filed then)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for item in received:
            order = item.order
            if item.control == CANCEL:
                done = db.execute(
                    "UPDATE lis_orders SET status='cancelled', source=?, control_id=?, "
                    "received_s=? WHERE accession=?",
                    (source, control_id, order.received_s, order.accession),
                )
                if done.rowcount == 0:
                    raise LisError(f"cancel of unknown accession {order.accession}: no such order")
                continue
            row = {**asdict(order), "source": source, "control_id": control_id}
            names = ", ".join(row)
            db.execute(
                f"INSERT OR REPLACE INTO lis_orders ({names}, status) "
                f"VALUES ({', '.join('?' * len(row))}, 'active')",
                tuple(row.values()),
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def reject(db: sqlite3.Connection, door: str, source: str, error: str, raw: str) -> None:
    """Keep a refused input and why, for the lab to see (`leukoscope lis status`)."""
    db.execute(
        "INSERT INTO lis_rejected (received_s, door, source, error, raw) VALUES (?, ?, ?, ?, ?)",
        (time.time(), door, source, error, raw[:RAW_LIMIT]),
    )


def find_order(db: sqlite3.Connection, accession: str) -> Order | None:
    """The active order for `accession`, or None."""
    row = db.execute(
        "SELECT * FROM lis_orders WHERE accession=? AND status='active'", (accession,)
    ).fetchone()
    if row is None:
        return None
    names = Order.__dataclass_fields__
    return Order(**{k: row[k] for k in row.keys() if k in names})  # noqa: SIM118


def receive(db: sqlite3.Connection, text: str, door: str, source: str) -> list[Order]:
    """Check and file one order message; a refused one is kept and its LisError raised."""
    try:
        control_id, received = parse_message(text)
        store(db, received, source, control_id)
    except LisError as exc:
        reject(db, door, source, str(exc), text)
        raise
    return [item.order for item in received]


def order_for(database: Path, accession: str) -> Order | None:
    """The active order for `accession` in results database `database`, read only (None when
    there is none, or no worklist yet)."""
    try:
        db = connect(database, read_only=True)
    except sqlite3.Error:
        return None
    db.row_factory = sqlite3.Row
    try:
        return find_order(db, accession) if has_table(db, "lis_orders") else None
    except sqlite3.Error:
        return None
    finally:
        db.close()
