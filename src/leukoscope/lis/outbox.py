"""The outbox: every released result waiting for, or done with, its trip to the laboratory system.

`fill` queues the releases (`review_releases`) that have no outbox row yet, in release order: the
message is rendered once and stored with its control id (HL7 MSH-10; FHIR: the same id), state
`pending`. A release without an order is not queued ("no order") until its order arrives; one
replaced by a later release before it was queued is `superseded`; one that may not leave (the
release rules no longer hold) is `refused` with the reason. The sender moves `pending` to `sent`
(with the ACK) or, after the last try, to `failed` (with the reason); `resend` puts a message back.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from leukoscope.config import Settings
from leukoscope.errors import LeukoscopeError, ParameterError
from leukoscope.lis.db import has_table
from leukoscope.lis.orders import find_order
from leukoscope.report.lis import Order, Parties

CHANNELS = ("hl7", "fhir")


@dataclass(frozen=True)
class Item:
    """One outbox row."""

    id: int
    run_id: str
    sample_id: str
    release_no: int
    channel: str
    control_id: str
    message: str
    state: str
    attempts: int
    next_try_s: float
    reason: str
    queued_s: float
    sent_s: float | None


def _item(row: sqlite3.Row) -> Item:
    return Item(**{k: row[k] for k in Item.__dataclass_fields__})


def channels(settings: Settings) -> list[str]:
    """The channels configured: hl7 (an MLLP receiver), fhir (a server or a folder)."""
    lis = settings.lis
    out = ["hl7"] if lis.host else []
    if lis.fhir_url or lis.fhir_folder is not None:
        out.append("fhir")
    return out


def parties(settings: Settings) -> Parties:
    """MSH-3..6 from the configuration."""
    lis = settings.lis
    return Parties(lis.sending_application, lis.sending_facility, lis.receiving_application,
                   lis.receiving_facility)  # fmt: skip


def unqueued(db: sqlite3.Connection, channel: str) -> list[sqlite3.Row]:
    """Releases with no outbox row on `channel`, in release order, each with the latest release
    number of its sample."""
    if not has_table(db, "review_releases"):
        return []
    return list(
        db.execute(
            "SELECT r.run_id, r.sample_id, r.release_no, r.released_s, "
            "(SELECT MAX(l.release_no) FROM review_releases l WHERE l.run_id=r.run_id "
            "AND l.sample_id=r.sample_id) AS latest FROM review_releases r WHERE NOT EXISTS "
            "(SELECT 1 FROM lis_outbox o WHERE o.run_id=r.run_id AND o.sample_id=r.sample_id "
            "AND o.release_no=r.release_no AND o.channel=?) ORDER BY r.released_s, r.rowid",
            (channel,),
        )
    )


def _render(
    database: Path, row: sqlite3.Row, channel: str, settings: Settings, order: Order
) -> tuple[str, str] | None:
    """(control id, message) of the release in force of the row's sample; None while the sample
    is reopened; ParameterError when it may not leave."""
    from datetime import datetime, timezone

    from leukoscope.report.data import gather_report
    from leukoscope.report.lis import message_id, render_fhir, render_hl7
    from leukoscope.report.review import RELEASED
    from leukoscope.results.store import ResultStore

    with ResultStore(database, read_only=True) as results:
        data = gather_report(results, row["sample_id"], row["run_id"], settings,
                             gallery_limit=0, with_thumbnails=False)  # fmt: skip
    if data.review is not None and data.review.state != RELEASED:
        return None  # reopened: its next release goes out as a correction
    control_id = message_id(data, datetime.fromtimestamp(row["released_s"], timezone.utc))
    if channel == "hl7":
        return control_id, render_hl7(data, order=order, parties=parties(settings))
    return control_id, render_fhir(data, order=order)


def _insert(db: sqlite3.Connection, row: sqlite3.Row, channel: str, control_id: str,
            message: str, state: str, reason: str = "") -> None:  # fmt: skip
    db.execute(
        "INSERT OR IGNORE INTO lis_outbox (run_id, sample_id, release_no, channel, control_id, "
        "message, state, reason, queued_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row["run_id"], row["sample_id"], row["release_no"], channel, control_id, message, state,
         reason, time.time()),
    )  # fmt: skip


def fill(db: sqlite3.Connection, database: Path, settings: Settings) -> int:
    """Queue every release not yet in the outbox, in release order; how many were queued."""
    queued = 0
    for channel in channels(settings):
        for row in unqueued(db, channel):
            if row["release_no"] < row["latest"]:
                _insert(db, row, channel, "", "", "superseded",
                        f"release {row['latest']} replaced it before it was queued")  # fmt: skip
                continue
            order = find_order(db, row["sample_id"])
            if order is None:
                continue  # no order (yet): shown by `lis status`, queued when it arrives
            try:
                rendered = _render(database, row, channel, settings, order)
            except LeukoscopeError as exc:
                _insert(db, row, channel, "", "", "refused", str(exc).splitlines()[0])
                continue
            if rendered is None:
                continue
            _insert(db, row, channel, *rendered, "pending")
            queued += 1
    return queued


def head(db: sqlite3.Connection, channel: str) -> Item | None:
    """The first pending message of `channel` (messages leave in order: none passes it)."""
    row = db.execute(
        "SELECT * FROM lis_outbox WHERE channel=? AND state='pending' ORDER BY id LIMIT 1",
        (channel,),
    ).fetchone()
    return None if row is None else _item(row)


def mark_sent(db: sqlite3.Connection, item: Item, ack: str) -> None:
    """The receiver accepted it: sent, with its ACK (committed at once)."""
    db.execute(
        "UPDATE lis_outbox SET state='sent', ack=?, sent_s=?, attempts=attempts+1, reason='' "
        "WHERE id=?",
        (ack[:4000], time.time(), item.id),
    )


def mark_try_failed(
    db: sqlite3.Connection, item: Item, reason: str, settings: Settings
) -> tuple[bool, float]:
    """A failed try: back off (doubling), or `failed` after the last try; (failed, wait s)."""
    lis = settings.lis
    attempts = item.attempts + 1
    if attempts >= lis.max_attempts:
        db.execute(
            "UPDATE lis_outbox SET state='failed', attempts=?, reason=? WHERE id=?",
            (attempts, f"{reason} (after {attempts} tries)", item.id),
        )
        return True, 0.0
    wait = min(lis.backoff_max_s, lis.backoff_s * 2 ** (attempts - 1))
    db.execute(
        "UPDATE lis_outbox SET attempts=?, reason=?, next_try_s=? WHERE id=?",
        (attempts, reason, time.time() + wait, item.id),
    )
    return False, wait


def resend(db: sqlite3.Connection, item_id: int) -> Item:
    """Put message `item_id` back in the queue (failed or sent: pending again, tries reset;
    refused: its row is dropped so the next fill judges the release again)."""
    row = db.execute("SELECT * FROM lis_outbox WHERE id=?", (item_id,)).fetchone()
    if row is None:
        raise ParameterError(f"no outbox message {item_id} (see leukoscope lis status)")
    item = _item(row)
    if item.state in ("refused", "superseded"):
        db.execute("DELETE FROM lis_outbox WHERE id=?", (item_id,))
    elif item.state != "pending":
        db.execute(
            "UPDATE lis_outbox SET state='pending', attempts=0, next_try_s=0, reason='', "
            "ack='', sent_s=NULL WHERE id=?",
            (item_id,),
        )
    return item


def items(db: sqlite3.Connection, limit: int = 200) -> list[Item]:
    """The latest outbox rows, newest last."""
    rows = db.execute("SELECT * FROM lis_outbox ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [_item(r) for r in reversed(rows)]


def without_order(db: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """Released results held back for want of an order: (run, sample, release)."""
    if not has_table(db, "review_releases"):
        return []
    return [
        (r[0], r[1], r[2])
        for r in db.execute(
            "SELECT r.run_id, r.sample_id, r.release_no FROM review_releases r WHERE NOT EXISTS "
            "(SELECT 1 FROM lis_orders o WHERE o.accession=r.sample_id AND o.status='active') "
            "AND NOT EXISTS (SELECT 1 FROM lis_outbox b WHERE b.run_id=r.run_id AND "
            "b.sample_id=r.sample_id AND b.release_no=r.release_no) ORDER BY r.released_s"
        )
    ]
