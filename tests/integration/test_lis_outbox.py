"""The outbox's other paths: a message NAKed on every try is `failed` with its reason and
`lis resend` brings it back; FHIR Bundles POSTed to a server that fails once; the ACK check;
the `[lis]` settings' bounds."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from leukoscope.config import Settings, load_settings
from leukoscope.errors import ConfigError, LisError
from leukoscope.lis.db import connect
from leukoscope.lis.mllp import check_ack
from leukoscope.lis.sender import send
from tests.cli_helpers import run_cli
from tests.lis_receiver import accepted

from .lis_helpers import free_port, order, receiver, release


def _settings(**lis: Any) -> Settings:
    fast = {"ack_timeout_s": 1.0, "backoff_s": 0.01, "backoff_max_s": 0.02, "poll_s": 0.05}
    return Settings.model_validate({"lis": {**fast, **lis}})


def _states(database: Path) -> list[tuple[str, int, str]]:
    db = connect(database)
    try:
        rows = db.execute("SELECT state, attempts, reason FROM lis_outbox ORDER BY id")
        return [(r[0], r[1], r[2]) for r in rows]
    finally:
        db.close()


def test_a_message_nakked_every_time_fails_with_its_reason_and_can_be_resent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database, port = tmp_path / "results.sqlite", free_port()
    order(database, "F-1")
    release(database, "F-1")
    settings = _settings(host="127.0.0.1", port=port, max_attempts=2)
    naks = receiver(port, tmp_path / "naks.jsonl", ["nak"])
    try:
        send(database, settings)
    finally:
        naks.kill()
        naks.wait(10)
    assert _states(database) == [("failed", 2, "NAK AE (after 2 tries)")]
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    assert run_cli(monkeypatch, "lis", "resend", "1", "--db", database) == 0
    assert _states(database) == [("pending", 0, "")]
    acks = receiver(port, tmp_path / "acks.jsonl", ["ack"])
    try:
        send(database, settings)
    finally:
        acks.kill()
        acks.wait(10)
    assert _states(database)[0][0] == "sent"
    assert len(accepted(tmp_path / "acks.jsonl")) == 1


class _Fhir(BaseHTTPRequestHandler):
    bodies: list[bytes] = []  # noqa: RUF012 - the test's record of what arrived

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append(body)
        self.send_response(500 if len(self.bodies) == 1 else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_fhir_bundles_are_posted_and_retried(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    order(database, "H-1")
    release(database, "H-1")
    server = HTTPServer(("127.0.0.1", 0), _Fhir)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        send(database, _settings(fhir_url=f"http://127.0.0.1:{server.server_port}/fhir/"))
    finally:
        server.shutdown()
        server.server_close()
    assert [s for s, _, _ in _states(database)] == ["sent"]
    assert len(_Fhir.bodies) == 2 and _Fhir.bodies[0] == _Fhir.bodies[1]  # the same Bundle again
    bundle = json.loads(_Fhir.bodies[1])
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction"


def test_only_an_ack_of_this_very_message_accepts_it() -> None:
    ack = "MSH|^~\\&|LIS||LEUKOSCOPE||20240101||ACK^R01^ACK|A1|P|2.5.1\rMSA|{code}|{about}\r"
    assert check_ack(ack.format(code="AA", about="M1").encode(), "M1").startswith("MSH")
    assert check_ack(ack.format(code="CA", about="M1").encode(), "M1")
    with pytest.raises(LisError, match="ACK for another message"):
        check_ack(ack.format(code="AA", about="M2").encode(), "M1")
    for code in ("AE", "AR", "CE", "CR"):
        with pytest.raises(LisError, match=f"NAK {code}"):
            check_ack(ack.format(code=code, about="M1").encode(), "M1")
    with pytest.raises(LisError, match="malformed ACK"):
        check_ack(b"\xff\xfe garbage", "M1")


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ('fhir_url = "http://x"\nfhir_folder = "out"', "not both"),
        ('fhir_url = "ftp://x"', "http:// or https://"),
        ('sending_application = "A|B"', "sending_application"),
        ("port = 70000", "port"),
        ("max_attempts = 0", "max_attempts"),
        ('tls_cert = "c.pem"', "go together"),
        ("backoff_s = 10.0\nbackoff_max_s = 1.0", "backoff_s"),
        ("retries = 3", "unknown key"),
    ],
)
def test_lis_settings_are_bounded(tmp_path: Path, toml: str, match: str) -> None:
    config = tmp_path / "lab.toml"
    config.write_text(f"[lis]\n{toml}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        load_settings(config, environ={})
