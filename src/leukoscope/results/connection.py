"""The one way the results database is opened: read-write, or read-only, also on read-only media.

Read-only is tried as `mode=ro` first; where SQLite cannot make the file's WAL index (a read-only
folder or medium) it falls back to `immutable=1`, which reads the file as it is. Every connection
may be used from any thread (its owner serialises access) and waits up to `BUSY_TIMEOUT_S` for
another process's write lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal
from urllib.parse import quote

BUSY_TIMEOUT_S = 30.0
"""How long a statement waits for another connection's lock before it fails."""

_READ_ONLY_MODES = ("?mode=ro", "?immutable=1")


def connect(
    path: Path | str, *, read_only: bool = False, autocommit: bool = False
) -> sqlite3.Connection:
    """A connection to the results database at `path`; sqlite3.Error when it cannot be opened.

    `read_only`: the file must exist and is never written (the read-only fallback above).
    `autocommit`: no implicit transactions (the caller opens its own `BEGIN`).
    """
    isolation: Literal["DEFERRED"] | None = None if autocommit else "DEFERRED"
    if not read_only:
        return sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=isolation
        )
    uri = f"file:{quote(str(Path(path).resolve()))}"
    error: sqlite3.Error = sqlite3.OperationalError(f"unable to open database file {path}")
    for mode in _READ_ONLY_MODES:
        try:
            db = sqlite3.connect(
                uri + mode, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                isolation_level=isolation,
            )  # fmt: skip
        except sqlite3.Error as exc:
            error = exc
            continue
        try:
            db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            db.close()
            error = exc
            continue
        return db
    raise error
