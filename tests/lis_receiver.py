"""A laboratory system's MLLP results receiver for the LIS tests, run as its own process:
python-hl7's asyncio MLLP server that answers each message by a schedule (ack, nak, drop the
connection, stay silent), cycled, and dedupes by MSH-10 as receivers do.

Every event is appended (and fsynced) to a JSON-lines log before the answer goes out; a restarted
receiver reads the log back, so it keeps both its place in the schedule and the control ids it
has accepted. `python -m tests.lis_receiver PORT LOG SCHEDULE` (SCHEDULE: comma-separated).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import hl7
from hl7.mllp import start_hl7_server


def read_log(log: Path) -> list[dict[str, Any]]:
    """The receiver's events so far."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def accepted(log: Path) -> list[dict[str, Any]]:
    """The messages accepted, each once, in the order they were accepted."""
    return [e for e in read_log(log) if e["event"] == "accept"]


class Receiver:
    def __init__(self, log: Path, schedule: list[str]) -> None:
        self.log = log
        self.schedule = schedule
        events = read_log(log)
        self.count = len(events)
        self.seen = {e["control_id"] for e in events if e["event"] in ("accept", "duplicate")}

    def record(self, event: str, message: hl7.Message) -> None:
        control_id = str(message.segment("MSH")[10])
        line = {"event": event, "control_id": control_id, "message": str(message)}
        with self.log.open("a") as out:
            out.write(json.dumps(line) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.count += 1

    async def on_client(self, reader: Any, writer: Any) -> None:
        try:
            while True:
                message = await reader.readmessage()
                control_id = str(message.segment("MSH")[10])
                action = self.schedule[self.count % len(self.schedule)]
                if control_id in self.seen and action == "ack":
                    self.record("duplicate", message)
                    writer.writemessage(message.create_ack("AA"))
                elif action == "ack":
                    self.record("accept", message)
                    self.seen.add(control_id)
                    writer.writemessage(message.create_ack("AA"))
                elif action == "nak":
                    self.record("nak", message)
                    writer.writemessage(message.create_ack("AE"))
                elif action == "drop":
                    self.record("drop", message)
                    return
                else:  # silent: read on, never answer (the sender times out)
                    self.record("silent", message)
                    await reader.read()
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


async def main(port: int, log: Path, schedule: list[str]) -> None:
    receiver = Receiver(log, schedule)
    server = await start_hl7_server(receiver.on_client, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(",")))
