"""The review records as a hash chain, and the check that finds the first place they were changed.

Every `review_audit` row carries `prev_hash` (the row before it, `GENESIS` for the first) and
`row_hash` = SHA-256 over `prev_hash` and the row's content; a release (`review_releases`) carries
the hash of its audit row (`chain_head`), and so does every message that leaves for a laboratory
system. `verify` replays the audit from the classifier's original classes and compares every table
with it: a changed, removed or inserted audit row breaks the chain; a cell label, sample state or
released differential changed without its audit row no longer matches the replay.

What it does not do: anyone who can write the file can rebuild a consistent chain from scratch; the
chain head kept by the laboratory system (and in the reports) is what exposes that.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leukoscope.errors import StorageError
from leukoscope.results.audit_chain import AUDIT_FIELDS, GENESIS, row_hash
from leukoscope.results.reads import counted_keys
from leukoscope.results.review_schema import UNIDENTIFIED_LABEL
from leukoscope.types import CELL_CLASSES

FIVE = frozenset(c.value for c in CELL_CLASSES)
RELEASED_LABELS = ("released", "released (partial)")


def chain_head(db: sqlite3.Connection) -> str:
    """The newest audit row's hash (GENESIS for an empty audit)."""
    row = db.execute("SELECT row_hash FROM review_audit ORDER BY id DESC LIMIT 1").fetchone()
    return str(row[0]) if row is not None and row[0] else GENESIS


def append_audit(db: sqlite3.Connection, values: Mapping[str, Any]) -> str:
    """Insert one audit row chained to the newest (inside the caller's write transaction); its
    hash."""
    prev = chain_head(db)
    digest = row_hash(prev, values)
    columns = (*AUDIT_FIELDS, "prev_hash", "row_hash")
    db.execute(
        f"INSERT INTO review_audit ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        (*(values[k] for k in AUDIT_FIELDS), prev, digest),
    )
    return digest


def _counts(labels: Mapping[tuple[int, int], str], classes: tuple[str, ...]) -> dict[str, int]:
    """Cells per class as a release records them: the five always, a further class when counted."""
    counts = {name: 0 for name in classes if name in FIVE}
    for label in labels.values():
        if label in classes:
            counts[label] = counts.get(label, 0) + 1
    return counts


def _legacy_before(db: sqlite3.Connection) -> int:
    """Audit ids below this were written before releases were kept (0: none were)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(review_audit)")}
    if "row_hash" not in columns:
        return 2**62
    found = db.execute("SELECT value FROM meta WHERE key='review_chained_before'").fetchone()
    return int(found[0]) if found is not None else 0


class _Replay:
    """The review of every sample as the audit says it went."""

    def __init__(self, db: sqlite3.Connection, classes: tuple[str, ...]) -> None:
        self.db = db
        self.classes = classes
        self.labels: dict[tuple[str, str], dict[tuple[int, int], str]] = {}
        self.state: dict[tuple[str, str], tuple[str, str]] = {}  # (state, released by)
        self.legacy_before = _legacy_before(db)
        originals = db.execute(
            "SELECT r.run_id, r.sample_id, r.fov, r.cell_index, r.original,"
            " COALESCE(c.flag_reason, '') LIKE 'unidentified%' FROM review_cells r"
            " LEFT JOIN cells c ON c.run_id = r.run_id AND c.sample_id = r.sample_id"
            " AND c.fov = r.fov AND c.cell_index = r.cell_index"
        ).fetchall()
        for run_id, sample_id, fov, cell_index, original, unidentified in originals:
            start = UNIDENTIFIED_LABEL if unidentified else original  # as the review began
            self.labels.setdefault((run_id, sample_id), {})[(fov, cell_index)] = start

    def apply(self, row: sqlite3.Row, releases: dict[str, sqlite3.Row]) -> str:
        """Play one audit row; a problem ("" when none)."""
        key = (row["run_id"], row["sample_id"])
        where = f"review_audit row {row['id']} ({row['sample_id']})"
        labels = self.labels.setdefault(key, {})
        if row["action"] == "reclassify":
            cell = (row["fov"], row["cell_index"])
            if labels.get(cell) != row["from_label"]:
                return f"{where}: changes cell {cell[0]}/{cell[1]} from {row['from_label']}, but it was {labels.get(cell)}"
            labels[cell] = row["to_label"]
        elif row["action"] == "reopen":
            self.state[key] = ("open", "")
        elif row["to_label"] in RELEASED_LABELS:
            release = releases.get(row["row_hash"] if "row_hash" in row.keys() else "")  # noqa: SIM118
            if release is None and row["id"] < self.legacy_before:
                self.state[key] = ("released", row["reviewer"])  # released before records
                return ""
            if release is None:
                return f"{where}: a release with no kept release record"
            differential = json.loads(release["differential"])
            if differential.get("counts") != _counts(labels, self.classes):
                return (
                    f"review_releases {row['sample_id']} release {release['release_no']}: its "
                    "differential is not the one the audit gives"
                )
            self.state[key] = ("released", release["reviewer"])
        return ""


def verify(db: sqlite3.Connection, classes: tuple[str, ...]) -> list[str]:
    """Every problem found in the review records, the first bad row first ([] when intact)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "review_audit" not in tables:
        return []
    db.row_factory = sqlite3.Row
    problems: list[str] = []
    releases = {}
    if "review_releases" in tables:
        for release in db.execute("SELECT * FROM review_releases ORDER BY run_id, sample_id"):
            releases[release["chain_head"]] = release
    replay = _Replay(db, classes)
    prev = GENESIS
    chained = "row_hash" in {r[1] for r in db.execute("PRAGMA table_info(review_audit)")}
    for row in db.execute("SELECT * FROM review_audit ORDER BY id"):
        if not chained:  # a file not yet opened by a version with the chain: replay only
            pass
        elif row["prev_hash"] != prev or row["row_hash"] != row_hash(prev, row):
            problems.append(
                f"review_audit row {row['id']}: does not follow the row before it or its content "
                "changed after it was written"
            )
            break
        prev = row["row_hash"] if chained else prev
        found = replay.apply(row, releases)
        if found:
            problems.append(found)
            break
    problems.extend(_compare_tables(db, replay, set(releases)))
    return problems


def _compare_tables(db: sqlite3.Connection, replay: _Replay, heads: set[str]) -> list[str]:
    """The cell labels and sample states stored against the replay."""
    problems: list[str] = []
    audit_heads = {r[0] for r in db.execute("SELECT row_hash FROM review_audit")}
    for release in db.execute("SELECT sample_id, release_no, chain_head FROM review_releases"):
        if release[2] not in audit_heads:
            problems.append(
                f"review_releases {release[0]} release {release[1]}: not in the audit chain"
            )
    for row in db.execute(
        "SELECT run_id, sample_id, fov, cell_index, label FROM review_cells"
        " ORDER BY run_id, sample_id, fov, cell_index"
    ):
        expected = replay.labels.get((row[0], row[1]), {}).get((row[2], row[3]))
        if expected != row[4]:
            problems.append(
                f"review_cells {row[1]} {row[2]}/{row[3]}: label {row[4]}, but the audit "
                f"gives {expected} (changed without an audit row)"
            )
    problems.extend(_compare_originals(db))
    for row in db.execute("SELECT run_id, sample_id, state, reviewer FROM review_samples"):
        state, by = replay.state.get((row[0], row[1]), ("open", ""))
        if row[2] != state or (state == "released" and row[3] != by):
            problems.append(
                f"review_samples {row[1]}: {row[2]} by {row[3] or 'nobody'}, but the audit "
                f"gives {state} by {by or 'nobody'}"
            )
    return problems


def _compare_originals(db: sqlite3.Connection) -> list[str]:
    """Each reviewed sample's cells against the classifier's counted cells in `cells`."""
    problems = []
    for run_id, sample_id in db.execute("SELECT run_id, sample_id FROM review_samples"):
        try:  # the ledger's counted cells, rebuilt from the stored cells (as the review began)
            keys = counted_keys(db, Path("results database"), run_id, sample_id) or set()
        except StorageError as exc:
            problems.append(f"review_samples {sample_id}: its stored cells are unreadable ({exc})")
            continue
        classes = {
            (r[0], r[1]): r[2]
            for r in db.execute(
                "SELECT fov, cell_index, cell_class FROM cells WHERE run_id=? AND sample_id=?",
                (run_id, sample_id),
            )
        }
        stored = {(k.fov, k.cell_index): classes.get((k.fov, k.cell_index)) for k in keys}
        reviewed = {
            (r[0], r[1]): r[2]
            for r in db.execute(
                "SELECT fov, cell_index, original FROM review_cells WHERE run_id=? AND sample_id=?",
                (run_id, sample_id),
            )
        }
        if stored != reviewed:
            differ = sorted(set(stored.items()) ^ set(reviewed.items()))
            fov, cell = differ[0][0]
            problems.append(
                f"review_cells {sample_id} {fov}/{cell}: not the classifier's counted cell "
                "(added, removed or its original class changed)"
            )
    return problems
