"""Releasing a sample inside the review store's write transaction: the lab's rules (`gates.py`),
the optional second person, and every released version kept in `review_releases`.

With verification required, the first person's release is a *submission* (kind and reason kept,
the sample still open); a second, different person's release of the same sample version releases
it, and both names are kept. Any change to the sample (a reclassification, a reopening) drops the
submission.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

from leukoscope.results.release_gates import (
    FINAL,
    PARTIAL,
    ReleaseRefused,
    release_facts,
    release_kind,
    sample_evidence,
)
from leukoscope.results.review_records import ReleaseRecord

SUBMITTED = "submitted for verification"

AuditLog = Callable[[str, str, str, str], str]
"""(from, to, reviewer, reason) of one sample-level audit row; its chain hash."""


def release_in(
    db: sqlite3.Connection,
    sample: sqlite3.Row,
    *,
    reviewer: str,
    partial: bool,
    reason: str,
    verification: bool,
    log: AuditLog,
) -> None:
    """Release (or, with `verification`, submit or verify) the open sample `sample` (its
    `review_samples` row, version already checked); ReleaseRefused names a broken rule."""
    run_id, sample_id = str(sample["run_id"]), str(sample["sample_id"])
    submitted_by = str(sample["submitted_by"])
    if verification and submitted_by:
        if submitted_by.casefold() == reviewer.casefold():
            raise ReleaseRefused(
                f"sample {sample_id!r} was submitted by {submitted_by}: a second, different "
                "person must verify it"
            )
        partial, reason = sample["submitted_kind"] == PARTIAL, str(sample["submitted_reason"])
    facts, differential = release_facts(db, run_id, sample_id)
    evidence = sample_evidence(db, run_id, sample_id)
    kind, why = release_kind(facts, evidence, sample_id, partial=partial, reason=reason)
    assert evidence.validation is not None  # release_kind refuses without one
    where = (run_id, sample_id)
    if verification and not submitted_by:
        db.execute(
            "UPDATE review_samples SET version=version+1, submitted_by=?, submitted_kind=?,"
            " submitted_reason=? WHERE run_id=? AND sample_id=?",
            (reviewer, kind, why, *where),
        )
        log("open", SUBMITTED, reviewer, why)
        return
    released_by, verified_by = (submitted_by, reviewer) if verification else (reviewer, "")
    number = int(sample["releases"]) + 1
    after = "released" if kind == FINAL else "released (partial)"
    head = log(SUBMITTED if verification else "open", after, reviewer, why)
    now = time.time()
    db.execute(
        "UPDATE review_samples SET state='released', version=version+1, reviewer=?, released_s=?,"
        " release_kind=?, release_reason=?, releases=?, submitted_by='', submitted_kind='',"
        " submitted_reason='' WHERE run_id=? AND sample_id=?",
        (released_by, now, kind, why, number, *where),
    )
    db.execute(
        "INSERT INTO review_releases (run_id, sample_id, release_no, kind, reason, reviewer,"
        " verified_by, released_s, model_sha256, rig_digest, validation_id, differential,"
        " chain_head) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*where, number, kind, why, released_by, verified_by, now, evidence.model_sha256,
         evidence.rig_digest, evidence.validation.id, json.dumps(differential), head),
    )  # fmt: skip


def drop_submission(db: sqlite3.Connection, run_id: str, sample_id: str) -> None:
    """A changed sample must be submitted again."""
    db.execute(
        "UPDATE review_samples SET submitted_by='', submitted_kind='', submitted_reason=''"
        " WHERE run_id=? AND sample_id=?",
        (run_id, sample_id),
    )


def read_releases(db: sqlite3.Connection, run_id: str, sample_id: str) -> list[ReleaseRecord]:
    """Every released version of the sample, first release first ([] without the table)."""
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='review_releases'"
    ).fetchone()
    if found is None:
        return []
    rows = db.execute(
        "SELECT * FROM review_releases WHERE run_id=? AND sample_id=? ORDER BY release_no",
        (run_id, sample_id),
    ).fetchall()
    return [
        ReleaseRecord(
            r["run_id"], r["sample_id"], r["release_no"], r["kind"], r["reason"], r["reviewer"],
            r["released_s"], r["model_sha256"], r["rig_digest"], r["validation_id"],
            json.loads(r["differential"]), r["verified_by"], r["chain_head"],
        )
        for r in rows
    ]  # fmt: skip
