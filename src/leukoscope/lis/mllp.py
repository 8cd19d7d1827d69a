"""MLLP (HL7's minimal lower layer protocol) through python-hl7's asyncio streams: one message out,
its ACK read and checked, over TCP or TLS.

A message counts as delivered only when the ACK's MSA-1 is AA or CA and its MSA-2 is the
message's own MSH-10; AE/AR/CE/CR, another control id, a malformed ACK, a timeout or a dropped
connection are each a failed try with a one-line reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leukoscope.errors import LisError

ACCEPTED = {"AA", "CA"}
BLOCK_LIMIT = 1 << 20  # the largest MLLP block read (an ACK, an order), bytes


def client_tls(ca: Path | None, cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A TLS client context that checks the receiver against `ca` (None: plain TCP)."""
    if ca is None:
        return None
    try:
        context = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            context.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise LisError(f"TLS set-up failed ({ca}): {exc}") from None
    return context


def server_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A TLS server context from a certificate and key (None: plain TCP)."""
    if cert is None:
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise LisError(f"TLS set-up failed ({cert}): {exc}") from None
    return context


def check_ack(block: bytes, control_id: str) -> str:
    """The ACK text when it accepts message `control_id`; LisError saying why not."""
    import hl7

    try:
        text = block.decode("utf-8")
        ack = hl7.parse(text.replace("\n", "\r").strip("\r"))
        msa = ack.segment("MSA")
        code = str(msa.extract_field(1, 1))
        about = str(msa.extract_field(1, 2))
        why = str(msa.extract_field(1, 3)) if len(msa) > 3 else ""
    except Exception as exc:  # python-hl7 raises many kinds on bad input
        raise LisError(f"malformed ACK: {str(exc)[:200]}") from None
    if about != control_id:
        raise LisError(f"ACK for another message (MSA-2 {about[:40]!r}, sent {control_id})")
    if code not in ACCEPTED:
        raise LisError(f"NAK {code}{': ' + why[:200] if why else ''}")
    return text


@dataclass
class MllpClient:
    """One connection to an MLLP receiver, opened when needed, closed after any failure."""

    host: str
    port: int
    timeout_s: float
    tls: ssl.SSLContext | None = None
    _streams: tuple[Any, Any] | None = None

    async def _connect(self) -> tuple[Any, Any]:
        from hl7.mllp import open_hl7_connection

        if self._streams is None:
            try:
                self._streams = await asyncio.wait_for(
                    open_hl7_connection(
                        self.host, self.port, limit=BLOCK_LIMIT, encoding="utf-8", ssl=self.tls
                    ),
                    self.timeout_s,
                )
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
                raise LisError(
                    f"cannot connect to {self.host}:{self.port}: {exc or 'timed out'}"
                ) from None
        assert self._streams is not None
        return self._streams

    async def send(self, message: str, control_id: str) -> str:
        """Send one message and wait for its ACK; the ACK text, or LisError (the connection is
        then closed, the next send opens a new one)."""
        reader, writer = await self._connect()
        try:
            writer.writeblock(message.encode("utf-8"))
            await writer.drain()
            block = await asyncio.wait_for(reader.readblock(), self.timeout_s)
            return check_ack(block, control_id)
        except asyncio.TimeoutError:
            await self.close()
            raise LisError(f"no ACK within {self.timeout_s:g} s") from None
        except (asyncio.IncompleteReadError, OSError, ssl.SSLError) as exc:
            await self.close()
            why = "closed by the receiver" if isinstance(exc, asyncio.IncompleteReadError) else exc
            raise LisError(f"connection dropped before the ACK ({why})") from None
        except (LisError, ValueError) as exc:
            await self.close()
            raise LisError(str(exc)) from None

    async def close(self) -> None:
        """Close the connection, if one is open."""
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 2.0)
