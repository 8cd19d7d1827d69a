"""Orders in: a worklist over MLLP (`leukoscope lis listen`, a real process) and from files
(`lis import`); the order is matched to the sample acquired under its accession and the result
carries its patient and accession. Bad input at this door gets one clear error, is kept for the
lab to see, and nothing already filed is lost."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle
from hl7.client import MLLPClient
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from leukoscope.lis.db import connect
from leukoscope.lis.orders import order_for
from tests.cli_helpers import run_cli
from tests.lis_receiver import accepted

from .lis_helpers import free_port, leukoscope, lis_env, receiver, release, wait_for

MSH = "MSH|^~\\&|LIS|LAB|LEUKOSCOPE|HAEM|20240101120000||{kind}|{id}|P|2.5.1"
OML = "\r".join([
    MSH.format(kind="OML^O33^OML_O33", id="ORD-1"),
    "PID|1||MRN-1^^^HOSP^MR||O'Brien \\T\\ Sons^Ann||19700203|F",
    "SPM|1|ACC-1||BLD^Whole blood^HL70487",
    "ORC|NW|PL-1",
    "OBR|1|PL-1||24318-8^Manual Differential panel - Blood^LN",
])  # fmt: skip
BAD = {
    "not HL7": "hello, this is not HL7",
    "delimiter in patient id": "\r".join([
        MSH.format(kind="ORM^O01^ORM_O01", id="ORD-2"),
        "PID|1||MRN\\F\\2^^^HOSP^MR||Roe^Bo",
        "ORC|NW|PL-2|ACC-2",
        "OBR|1|PL-2|ACC-2|24318-8^Manual Differential panel - Blood^LN",
    ]),
    "unknown accession": "\r".join([
        MSH.format(kind="ORM^O01^ORM_O01", id="ORD-3"),
        "PID|1||MRN-3^^^HOSP^MR||Poe^Cy",
        "ORC|CA|PL-3|NOPE-9",
        "OBR|1|PL-3|NOPE-9|24318-8^Manual Differential panel - Blood^LN",
    ]),
    "accession not a sample id": "\r".join([
        MSH.format(kind="ORM^O01^ORM_O01", id="ORD-4"),
        "PID|1||MRN-4^^^HOSP^MR||Lo^Di",
        "ORC|NW|PL-4|../etc",
        "OBR|1|PL-4|../etc|24318-8^Manual Differential panel - Blood^LN",
    ]),
}  # fmt: skip


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _text(ack: bytes) -> str:
    return ack.decode("utf-8").strip("\x0b\x1c\r")


def _msa(ack: bytes) -> tuple[str, str, str]:
    message = hl7.parse(_text(ack))
    err = message.segments("ERR")[0][8] if "ERR" in _text(ack) else ""
    return str(message.segment("MSA")[1]), str(message.segment("MSA")[2]), str(err)


def test_an_order_over_mllp_reaches_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database, port = tmp_path / "results.sqlite", free_port()
    env = lis_env(free_port(), LEUKOSCOPE__LIS__LISTEN_PORT=str(port))
    listener = leukoscope(["lis", "listen", "--db", str(database)], env, tmp_path / "listen.log")
    try:
        wait_for(lambda: _listening(port), what="the order listener")
        with MLLPClient("127.0.0.1", port) as client:
            ack = client.send_message(OML)
            assert _msa(ack)[:2] == ("AA", "ORD-1")
            parse_message(_text(ack), validation_level=VALIDATION_LEVEL.STRICT)
            for what, text in BAD.items():
                code, about, error = _msa(client.send_message(text))
                assert code == "AR" and error and "\n" not in error, what
                if what != "not HL7":
                    assert about == text.split("|")[9], what
        with MLLPClient("127.0.0.1", port) as client:  # framing lost: refused, connection closed
            client.socket.sendall(b"no start block\x1c\r")
            assert client.socket.recv(100) == b""
    finally:
        listener.terminate()
        listener.wait(10)
    kept = order_for(database, "ACC-1")  # the good order survived every bad one
    assert kept is not None and kept.patient_id == "MRN-1" and kept.family_name == "O'Brien & Sons"
    assert order_for(database, "ACC-2") is None
    db = connect(database)
    refused = [dict(r) for r in db.execute("SELECT * FROM lis_rejected ORDER BY id")]
    db.close()
    assert len(refused) == len(BAD) + 1
    assert "HL7 delimiter" in refused[1]["error"] and "MRN\\F\\2" in refused[1]["raw"]
    assert "cancel of unknown accession NOPE-9" in refused[2]["error"]
    assert "accession '../etc' is not allowed" in refused[3]["error"]
    assert "not an MLLP block" in refused[4]["error"]

    # the sample acquired under the accession is released and leaves with its patient
    release(database, "ACC-1")
    release(database, "ACC-7")  # nobody ordered it
    receiver_port, log = free_port(), tmp_path / "received.jsonl"
    folder = tmp_path / "fhir"
    folder.mkdir()
    env = lis_env(receiver_port, LEUKOSCOPE__LIS__FHIR_FOLDER=str(folder))
    listening = receiver(receiver_port, log, ["ack"])
    try:
        sender = leukoscope(["lis", "send", "--db", str(database)], env, tmp_path / "send.log")
        assert sender.wait(30) == 0, (tmp_path / "send.log").read_text()
    finally:
        listening.kill()
        listening.wait(10)
    (message,) = [e["message"] for e in accepted(log)]
    parse_message(message, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    oru = hl7.parse(message)
    pid = oru.segment("PID")
    assert pid.extract_field(1, 3, 1, 1) == "MRN-1" and pid.extract_field(1, 3, 1, 4) == "HOSP"
    assert pid.extract_field(1, 5, 1, 1) == "O'Brien & Sons"
    assert str(oru.segment("OBR")[2]) == "PL-1" and str(oru.segment("OBR")[3]) == "ACC-1"
    assert str(oru.segment("SPM")[2]).endswith("ACC-1")
    (bundle_file,) = folder.iterdir()
    bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction"
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["identifier"][0]["value"] == "MRN-1"

    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    assert run_cli(monkeypatch, "lis", "status", "--db", database) == 0
    shown = capsys.readouterr().out
    assert "no order: ACC-7 release 1" in shown and "0 pending, 2 sent, 0 failed" in shown
    assert shown.count("refused #") == len(BAD) + 1 and "HL7 delimiter" in shown


def test_a_worklist_file_files_its_good_rows_and_names_each_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "results.sqlite"
    worklist = tmp_path / "worklist.csv"
    worklist.write_text(
        "accession,patient_id,family_name,given_name,birth_date,sex,placer_order\n"
        "W-1,MRN-1,Doe,Jo,19800101,F,PL-1\n"
        "W-2,MRN|2,Roe,Bo,19800101,M,PL-2\n"
        "W 3,MRN-3,Poe,Cy,19800101,M,PL-3\n"
        "W-4,MRN-4,Lo,Di,1980-01-01,F,PL-4\n",
        encoding="utf-8",
    )
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    assert run_cli(monkeypatch, "lis", "import", worklist, "--db", database) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 3 and "Traceback" not in err
    assert "line 3: patient id 'MRN|2' holds an HL7 delimiter" in lines[0]
    assert "line 4: accession 'W 3' is not allowed" in lines[1]
    assert "line 5: birth date '1980-01-' is not YYYYMMDD" in lines[2]
    assert "filed 1 order(s), refused 3" in err
    assert order_for(database, "W-1") is not None and order_for(database, "W-2") is None
    hl7_file = tmp_path / "orders.hl7"
    hl7_file.write_text(OML.replace("\r", "\n") + "\n" + BAD["unknown accession"], encoding="utf-8")
    assert run_cli(monkeypatch, "lis", "import", hl7_file, "--db", database) == 2
    err = capsys.readouterr().err
    assert "message 2: cancel of unknown accession NOPE-9" in err and "filed 1 order(s)" in err
    assert order_for(database, "ACC-1") is not None and order_for(database, "W-1") is not None
    assert run_cli(monkeypatch, "lis", "resend", "99", "--db", database) == 2
    assert (
        capsys.readouterr().err.strip() == "error: no outbox message 99 (see leukoscope lis status)"
    )
