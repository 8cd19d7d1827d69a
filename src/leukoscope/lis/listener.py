"""`leukoscope lis listen`: orders over MLLP (python-hl7's asyncio server), each answered with an
ACK (hl7apy, strict v2.5.1): AA when filed, AR with the one-line reason when refused (the refused
message is kept, nothing filed before it is touched)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from leukoscope.config import Settings
from leukoscope.errors import LisError
from leukoscope.lis import orders
from leukoscope.lis.mllp import BLOCK_LIMIT, server_tls
from leukoscope.report.lis.common import escape, hl7_time

DOOR = "mllp"


def _field(text: str, segment: str, number: int) -> str:
    """Field `number` of the first `segment` of a raw message ('' when absent; MSH counted as
    HL7 counts it)."""
    for line in text.replace("\n", "\r").split("\r"):
        if line.startswith(segment + "|"):
            parts = line.split("|")
            index = number - 1 if segment == "MSH" else number
            return parts[index] if 0 <= index < len(parts) else ""
    return ""


def ack_for(text: str, code: str, error: str, settings: Settings) -> str:
    """The ACK of an order message (AA accepted, AR refused with its reason), built and validated
    by hl7apy; MSA-2 is the order's MSH-10 as received (escaped when it holds a delimiter)."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.core import Message

    lis = settings.lis
    ack = Message("ACK", version="2.5.1", validation_level=VALIDATION_LEVEL.STRICT)
    ack.msh.msh_3 = escape(lis.sending_application)
    if lis.sending_facility:
        ack.msh.msh_4 = escape(lis.sending_facility)
    sender_app, sender_facility = _field(text, "MSH", 3), _field(text, "MSH", 4)
    if sender_app:
        ack.msh.msh_5 = escape(sender_app.split("^")[0][:64])
    if sender_facility:
        ack.msh.msh_6 = escape(sender_facility.split("^")[0][:64])
    now = datetime.now(timezone.utc)
    ack.msh.msh_7 = hl7_time(now)
    ack.msh.msh_9 = "ACK^O33^ACK" if "OML" in _field(text, "MSH", 9) else "ACK^O01^ACK"
    ack.msh.msh_10 = f"ACK{now.strftime('%Y%m%d%H%M%S%f')}"
    ack.msh.msh_11 = "P"
    ack.msh.msh_12 = "2.5.1"
    ack.msa.msa_1 = code
    ack.msa.msa_2 = escape(_field(text, "MSH", 10)[:199]) or "UNKNOWN"
    if error:
        err = ack.add_segment("ERR")
        err.err_3 = "207^Application internal error^HL70357"
        err.err_4 = "E"
        err.err_8 = escape(error[:250])
    return str(ack.to_er7()) + "\r"


def handle(db: sqlite3.Connection, block: bytes, source: str, settings: Settings) -> str:
    """File one received block's orders (or keep it refused); the ACK to answer with."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
        orders.reject(db, DOOR, source, "not UTF-8 text", text)
        return ack_for(text, "AR", "not UTF-8 text", settings)
    try:
        orders.receive(db, text, DOOR, source)
    except LisError as exc:
        return ack_for(text, "AR", str(exc), settings)
    return ack_for(text, "AA", "", settings)


def _connected(
    db: sqlite3.Connection, settings: Settings, say: Callable[[str], None]
) -> Callable[[Any, Any], Any]:
    from hl7.mllp import InvalidBlockError

    async def on_client(reader: Any, writer: Any) -> None:
        peer = writer.get_extra_info("peername")
        source = f"{DOOR} {peer[0]}:{peer[1]}" if peer else DOOR
        try:
            while True:
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        error = "connection closed in the middle of a message"
                        orders.reject(db, DOOR, source, error, exc.partial.decode("latin-1"))
                        say(f"refused from {source}: {error}")
                    return
                except (InvalidBlockError, ValueError) as exc:
                    error = f"not an MLLP block: {exc}"
                    orders.reject(db, DOOR, source, error, "")
                    say(f"refused from {source}: {error}")
                    return  # the framing is lost: close, the sender reconnects
                answer = handle(db, block, source, settings)
                code = _field(answer, "MSA", 1)
                say(f"{'filed' if code == 'AA' else 'refused'} order from {source}"
                    f"{': ' + _field(answer, 'ERR', 8) if code != 'AA' else ''}")  # fmt: skip
                writer.writeblock(answer.encode("utf-8"))
                await writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()

    return on_client


async def serve(db: sqlite3.Connection, settings: Settings, say: Callable[[str], None],
                ready: Callable[[int], None] | None = None) -> None:  # fmt: skip
    """Listen for orders until cancelled."""
    from hl7.mllp import start_hl7_server

    lis = settings.lis
    tls = server_tls(lis.listen_tls_cert, lis.listen_tls_key)
    try:
        server = await start_hl7_server(
            _connected(db, settings, say), lis.listen_host, lis.listen_port,
            limit=BLOCK_LIMIT, ssl=tls,
        )  # fmt: skip
    except OSError as exc:
        raise LisError(
            f"cannot listen on {lis.listen_host}:{lis.listen_port}: {exc.strerror or exc}"
        ) from None
    port = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready(port)
    async with server:
        await server.serve_forever()
