"""FHIR Bundles out: POSTed to the configured server (a 2xx answer accepts it), or written to the
configured folder through the project's one writer (a file named by its control id)."""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from leukoscope.atomic import atomic_write_text
from leukoscope.errors import LeukoscopeError, LisError


def _post(url: str, body: bytes, timeout_s: float, tls: ssl.SSLContext | None) -> str:
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=tls) as answer:
            return f"HTTP {answer.status}"
    except urllib.error.HTTPError as exc:
        raise LisError(f"FHIR server answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LisError(f"cannot reach the FHIR server {url}: {reason}") from None


async def deliver(
    message: str,
    control_id: str,
    *,
    url: str = "",
    folder: Path | None = None,
    timeout_s: float = 30.0,
    tls: ssl.SSLContext | None = None,
) -> str:
    """Deliver one Bundle; what accepted it ('HTTP 200', 'wrote PATH'), or LisError."""
    if folder is not None:
        target = Path(folder) / f"{control_id}.fhir.json"
        try:
            atomic_write_text(target, message)
        except LeukoscopeError as exc:
            raise LisError(str(exc)) from None
        return f"wrote {target}"
    return await asyncio.to_thread(_post, url, message.encode("utf-8"), timeout_s, tls)
