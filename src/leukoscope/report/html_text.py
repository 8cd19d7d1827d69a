"""Text as the report's HTML writes it: escaped, times in UTC."""

from __future__ import annotations

import html
from datetime import datetime, timezone


def esc(value: object) -> str:
    """HTML-escaped text (quotes included)."""
    return html.escape(str(value), quote=True)


def utc(seconds: float | None) -> str:
    """'YYYY-MM-DD HH:MM:SS UTC', or an em dash."""
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
