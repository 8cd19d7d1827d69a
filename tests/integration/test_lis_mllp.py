"""Released results reach a laboratory system over MLLP exactly once, in the order released:
a real receiver process ACKs, NAKs, drops the connection and stays silent on a schedule; the
sender process is killed with SIGKILL mid-run and the receiver is killed and restarted."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from leukoscope.lis.db import connect
from tests.lis_receiver import accepted, read_log

from .lis_helpers import correct, free_port, leukoscope, lis_env, order, receiver, release, wait_for

SCHEDULE = ["ack", "nak", "ack", "drop", "ack", "silent", "ack", "ack", "nak", "ack"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def _outbox(database: Path) -> list[tuple[str, int, str, str]]:
    db = connect(database)
    try:
        return [
            (r["sample_id"], r["release_no"], r["state"], r["control_id"])
            for r in db.execute("SELECT * FROM lis_outbox ORDER BY id")
        ]
    finally:
        db.close()


def _released_order(database: Path) -> list[tuple[str, int]]:
    db = connect(database)
    try:
        rows = db.execute(
            "SELECT sample_id, release_no FROM review_releases ORDER BY released_s, rowid"
        )
        return [(r[0], r[1]) for r in rows]
    finally:
        db.close()


def test_every_release_arrives_once_in_order_across_kills_and_restarts(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    runs = {}
    for sample in ("A-1", "A-2", "A-3"):
        order(database, sample, patient=f"P-{sample}")
        runs[sample] = release(database, sample)
    release(database, "NO-ORDER")  # analysed and released, never ordered: never sent
    port, log, out = free_port(), tmp_path / "received.jsonl", tmp_path / "sender.log"
    # an ACK late past the sender's timeout is sent again (a duplicate the receiver dedupes): the
    # timeout is generous so that only the kill below can make one, even on a loaded machine
    env = lis_env(port, LEUKOSCOPE__LIS__ACK_TIMEOUT_S="5")
    listening = receiver(port, log, SCHEDULE)
    sender = leukoscope(["lis", "send", "--follow", "--db", str(database)], env, out)
    try:
        wait_for(lambda: len(accepted(log)) >= 2, what="two results accepted")
        sender.send_signal(signal.SIGKILL)  # mid-run: the third is pending or in flight
        sender.wait(10)
        for sample in ("A-4", "A-5"):
            order(database, sample, patient=f"P-{sample}")
            runs[sample] = release(database, sample)
        correct(database, runs["A-1"], "A-1")  # a correction takes the same path
        listening.kill()  # the receiver goes down too, and comes back
        listening.wait(10)
        listening = receiver(port, log, SCHEDULE)
        sender = leukoscope(["lis", "send", "--follow", "--db", str(database)], env, out)
        wait_for(lambda: len(accepted(log)) >= 6, what="six results accepted")
        sender.terminate()
        sender.wait(10)
        # and a one-shot `lis send` finds nothing left to do
        done = subprocess.run(
            [sys.executable, "-m", "leukoscope", "lis", "send", "--db", str(database)],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    finally:
        for process in (sender, listening):
            if process.poll() is None:
                process.kill()
                process.wait(10)
    expected = [r for r in _released_order(database) if r[0] != "NO-ORDER"]
    assert len(expected) == 6
    outbox = _outbox(database)
    assert [(s, n) for s, n, _, _ in outbox] == expected  # queued in release order
    assert all(state == "sent" for _, _, state, _ in outbox)
    got = accepted(log)
    assert [e["control_id"] for e in got] == [c for _, _, _, c in outbox]  # once each, in order
    events = [e["event"] for e in read_log(log)]
    assert {"nak", "drop", "silent"} <= set(events)  # every failure mode was met
    assert events.count("duplicate") <= 1  # at most the one in flight when the sender was killed
    for event, (sample, release_no) in zip(got, expected, strict=True):
        text = event["message"]
        parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        message = hl7.parse(text)  # an independent parser
        assert str(message.segment("OBR")[3]) == sample
        assert str(message.segment("PID")[3]).startswith(f"P-{sample}")
        assert str(message.segment("OBR")[25]) == ("C" if release_no > 1 else "F")
    assert "NO-ORDER" not in log.read_text()
