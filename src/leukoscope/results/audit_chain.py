"""The audit rows' hash chain as stored: each `review_audit` row's `row_hash` is SHA-256 over the
previous row's hash (`GENESIS` for the first) and the row's content. Here for the migration that
chains a file written before the chain; appending and verifying are the review's (`results/review_chain.py`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from typing import Any

GENESIS = "0" * 64
AUDIT_FIELDS = (
    "run_id", "sample_id", "fov", "cell_index", "action", "from_label", "to_label", "reviewer",
    "time_s", "reason",
)  # fmt: skip


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the previous row's hash and this row's content."""
    content = json.dumps([prev_hash, *(row[k] for k in AUDIT_FIELDS)], separators=(",", ":"))
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def chain_existing(db: sqlite3.Connection) -> None:
    """Chain the audit rows of a file written before the chain (once, when the columns are
    added): the append-only trigger is lifted for it and restored by the caller."""
    db.execute("DROP TRIGGER IF EXISTS review_audit_no_update")
    prev = GENESIS
    db.row_factory = sqlite3.Row
    for row in db.execute("SELECT * FROM review_audit ORDER BY id").fetchall():
        digest = row_hash(prev, row)
        db.execute(
            "UPDATE review_audit SET prev_hash=?, row_hash=? WHERE id=?", (prev, digest, row["id"])
        )
        prev = digest
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('review_chained_before', "
        "(SELECT COALESCE(MAX(id), 0) + 1 FROM review_audit))"
    )
