"""The delivery loop: fill the outbox, send each channel's messages in order (none passes the one
before it), back off after a failed try, mark `sent` the moment the ACK is read.

A crash between reading an ACK and committing `sent` (a few microseconds) sends that one message
again on restart, under the same MSH-10: receivers drop a control id they have already accepted
(standard HL7 practice).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from leukoscope.config import Settings
from leukoscope.errors import LisError, ParameterError
from leukoscope.lis import outbox
from leukoscope.lis.fhir_out import deliver
from leukoscope.lis.mllp import MllpClient, client_tls

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class Sender:
    """Sends what the outbox holds for each configured channel."""

    def __init__(self, db: sqlite3.Connection, database: Path, settings: Settings,
                 say: Say = _quiet) -> None:  # fmt: skip
        self.db, self.database, self.settings, self.say = db, database, settings, say
        self.channels = outbox.channels(settings)
        if not self.channels:
            raise ParameterError(
                "no laboratory system configured: set lis.host (MLLP) or lis.fhir_url / "
                "lis.fhir_folder (FHIR)"
            )
        lis = settings.lis
        self.tls = client_tls(lis.tls_ca, lis.tls_cert, lis.tls_key)
        self.mllp = MllpClient(lis.host, lis.port, lis.ack_timeout_s, self.tls)

    async def _deliver(self, item: outbox.Item) -> str:
        lis = self.settings.lis
        if item.channel == "hl7":
            return await self.mllp.send(item.message, item.control_id)
        return await deliver(item.message, item.control_id, url=lis.fhir_url,
                             folder=lis.fhir_folder, timeout_s=lis.ack_timeout_s,
                             tls=self.tls)  # fmt: skip

    async def step(self) -> float | None:
        """Try the head message of each channel once it is due; seconds until the next is due
        (0: go on at once), or None when nothing is pending."""
        waits: list[float] = []
        for channel in self.channels:
            item = outbox.head(self.db, channel)
            if item is None:
                continue
            due = item.next_try_s - time.time()
            if due > 0:
                waits.append(due)
                continue
            try:
                ack = await self._deliver(item)
            except LisError as exc:
                failed, wait = outbox.mark_try_failed(self.db, item, str(exc), self.settings)
                state = "failed" if failed else f"retry in {wait:g} s"
                self.say(f"{item.sample_id} release {item.release_no} ({channel}): {exc}; {state}")
                waits.append(0.0 if failed else wait)
                continue
            outbox.mark_sent(self.db, item, ack)  # the same instant the ACK is read
            self.say(f"sent {item.sample_id} release {item.release_no} ({channel}) "
                     f"{item.control_id}")  # fmt: skip
            waits.append(0.0)
        return min(waits) if waits else None

    async def run(self, follow: bool) -> None:
        """Send until nothing is pending (follow: for ever, looking for releases every poll)."""
        poll = self.settings.lis.poll_s
        last_fill = 0.0
        try:
            while True:
                if time.monotonic() - last_fill >= poll or not follow:
                    queued = outbox.fill(self.db, self.database, self.settings)
                    last_fill = time.monotonic()
                    if queued:
                        self.say(f"queued {queued} result(s)")
                wait = await self.step()
                if wait is None and not follow:
                    if outbox.fill(self.db, self.database, self.settings) == 0:
                        return
                    continue
                if wait is None or wait > 0:
                    await asyncio.sleep(min(poll, wait if wait is not None else poll))
        finally:
            await self.mllp.close()


def send(database: Path, settings: Settings, *, follow: bool = False, say: Say = _quiet) -> None:
    """`leukoscope lis send`: deliver the outbox (and, with follow, keep at it)."""
    from leukoscope.lis.db import connect

    db = connect(database)
    try:
        asyncio.run(Sender(db, database, settings, say).run(follow))
    finally:
        db.close()
