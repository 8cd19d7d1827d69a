"""Review state in the results database: reviewed labels, an append-only audit, the released lock.

Beside the result store's tables in the same file (made by its schema-5 migration,
`results/review_schema.py`; a sample never reviewed simply has no review). Tables:

- `review_samples`: per (run, sample) the state (`open` | `released`), a version bumped by every
  change, the reviewer who released it and when.
- `review_cells`: one row per originally counted cell: the classifier's class (`original`), the
  current label (a class, `ARTEFACT` or `SMUDGE`), the original flag and a per-cell version.
- `review_audit`: append-only (triggers refuse UPDATE and DELETE): every reclassification, release
  and reopening with reviewer, time and reason.
- view `review_counted_cells`: the cells the reviewed differential counts (label is one of the five
  classes); artefacts and smudges leave it.

Two reviewers never overwrite each other silently: an edit carries the cell version it was made on
and a release or reopening the sample version; a stale one raises `ReviewConflict`.
"""

from __future__ import annotations

import sqlite3
import time
from typing import cast

from leukoscope.errors import ParameterError, StorageError
from leukoscope.ids import check_sample_id
from leukoscope.results.audit_chain import GENESIS
from leukoscope.results.release_gates import Evidence, sample_evidence
from leukoscope.results.releases import drop_submission, read_releases, release_in
from leukoscope.results.review_chain import append_audit, chain_head, verify
from leukoscope.results.review_database import ReviewDatabase
from leukoscope.results.review_records import (
    AuditRow,
    ReleaseRecord,
    ReviewCell,
    ReviewConflict,
    ReviewState,
    check_label,
    check_reason,
    check_reviewer,
)
from leukoscope.results.review_schema import (
    REVIEW_SAMPLE_COLUMNS,
    UNIDENTIFIED_LABEL,
    WHITE_CLASSES,
)
from leukoscope.results.store import ResultStore
from leukoscope.types import CellResult, SampleStatus, SampleSummary


class ReviewStore(ReviewDatabase):
    """The review of the samples of a results database; a context manager."""

    # -- reading ---------------------------------------------------------------------------------

    def state(self, run_id: str, sample_id: str) -> ReviewState | None:
        """The sample's review, or None when it was never opened for review."""
        rows = self._rows(
            "SELECT s.*, (SELECT COUNT(*) FROM review_audit a WHERE a.run_id=s.run_id"
            " AND a.sample_id=s.sample_id) AS edits FROM review_samples s"
            " WHERE run_id=? AND sample_id=?",
            (run_id, sample_id),
        )
        if not rows:
            return None
        r = rows[0]
        extra = {k: r[k] for k in REVIEW_SAMPLE_COLUMNS if k in r.keys()}  # noqa: SIM118
        return ReviewState(
            run_id, sample_id, r["state"], r["version"], r["opened_s"], r["reviewer"],
            r["released_s"], r["edits"], **extra,
        )  # fmt: skip

    def states(self) -> dict[tuple[str, str], ReviewState]:
        """Every sample's review, by (run, sample)."""
        keys = self._rows("SELECT run_id, sample_id FROM review_samples", ())
        found = {(k[0], k[1]): self.state(k[0], k[1]) for k in keys}
        return {k: v for k, v in found.items() if v is not None}

    def cells(self, run_id: str, sample_id: str) -> list[ReviewCell]:
        """The sample's reviewed cells in (fov, cell_index) order (empty before review)."""
        return [
            ReviewCell(r["fov"], r["cell_index"], r["original"], r["label"], bool(r["flagged"]),
                       r["version"])
            for r in self._rows(
                "SELECT * FROM review_cells WHERE run_id=? AND sample_id=?"
                " ORDER BY fov, cell_index",
                (run_id, sample_id),
            )
        ]  # fmt: skip

    def audit(self, run_id: str, sample_id: str) -> list[AuditRow]:
        """The sample's audit rows, oldest first."""
        return [
            AuditRow(**{k: r[k] for k in r.keys()})  # noqa: SIM118 (sqlite3.Row)
            for r in self._rows(
                "SELECT * FROM review_audit WHERE run_id=? AND sample_id=? ORDER BY id",
                (run_id, sample_id),
            )
        ]

    def releases(self, run_id: str, sample_id: str) -> list[ReleaseRecord]:
        """Every released version of the sample, first release first."""
        if not self._has_tables:
            return []
        try:
            return read_releases(self._db, run_id, sample_id)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    def evidence(self, run_id: str, sample_id: str) -> Evidence:
        """The model, rig set-up and passing validation the sample's results rest on."""
        try:
            return sample_evidence(self._db, run_id, sample_id)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    # -- writing ---------------------------------------------------------------------------------

    def open_review(
        self,
        results: ResultStore,
        run_id: str,
        sample_id: str,
        *,
        known: tuple[SampleSummary, list[CellResult]] | None = None,
    ) -> ReviewState:
        """Start (or return) the sample's review: its counted cells copied in with their classes.

        `known`: the sample's summary and counted cells if the caller has them already. A sample
        still running cannot be reviewed (its differential is not final).
        """
        check_sample_id(sample_id)
        existing = self.state(run_id, sample_id)
        if existing is not None:
            return existing
        if known is None:  # StorageError for an unknown sample
            known = results.summary(run_id, sample_id), results.counted_results(run_id, sample_id)
        summary, counted = known
        if summary.status == SampleStatus.RUNNING:
            raise ReviewConflict(
                f"sample {sample_id!r} is still running: review it once its differential is final"
            )
        with self._write() as db:
            if db.execute(
                "SELECT 1 FROM review_samples WHERE run_id=? AND sample_id=?", (run_id, sample_id)
            ).fetchone():
                return self._state(run_id, sample_id)  # opened meanwhile by another process
            db.execute(
                "INSERT INTO review_samples (run_id, sample_id, state, opened_s)"
                " VALUES (?, ?, 'open', ?)",
                (run_id, sample_id, time.time()),
            )
            db.executemany(
                "INSERT INTO review_cells (run_id, sample_id, fov, cell_index, original,"
                " label, flagged) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (run_id, sample_id, r.key.fov, r.key.cell_index, r.cell_class.value,
                     UNIDENTIFIED_LABEL if r.unidentified else r.cell_class.value,
                     int(r.flagged))
                    for r in counted
                ],
            )  # fmt: skip
        state = self.state(run_id, sample_id)
        assert state is not None
        return state

    def _open_state(self, db: sqlite3.Connection, run_id: str, sample_id: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT * FROM review_samples WHERE run_id=? AND sample_id=?", (run_id, sample_id)
        ).fetchone()
        if row is None:
            raise ParameterError(f"sample {sample_id!r} of run {run_id} is not open for review")
        return cast(sqlite3.Row, row)

    def reclassify(
        self,
        run_id: str,
        sample_id: str,
        fov: int,
        cell_index: int,
        label: str,
        *,
        reviewer: str,
        version: int,
        reason: str = "",
    ) -> ReviewCell:
        """Give a cell a new label; `version` is the cell version the reviewer saw.

        ReviewConflict when the sample is released or the cell changed since `version`.
        """
        label, reviewer = check_label(label), check_reviewer(reviewer)
        reason = check_reason(reason) if reason.strip() else ""
        with self._write() as db:
            sample = self._open_state(db, run_id, sample_id)
            if sample["state"] == "released":
                raise ReviewConflict(
                    f"sample {sample_id!r} was released by {sample['reviewer']}: "
                    "reopen it (with a reason) to change it"
                )
            row = db.execute(
                "SELECT * FROM review_cells WHERE run_id=? AND sample_id=? AND fov=?"
                " AND cell_index=?",
                (run_id, sample_id, fov, cell_index),
            ).fetchone()
            if row is None:
                raise ParameterError(
                    f"cell {fov}/{cell_index} is not one of sample {sample_id!r}'s counted cells"
                )
            if row["version"] != version:
                last = db.execute(
                    "SELECT reviewer, to_label FROM review_audit WHERE run_id=? AND sample_id=?"
                    " AND fov=? AND cell_index=? ORDER BY id DESC LIMIT 1",
                    (run_id, sample_id, fov, cell_index),
                ).fetchone()
                who = f" by {last['reviewer']} to {last['to_label']}" if last else ""
                raise ReviewConflict(
                    f"cell {fov}/{cell_index} was changed{who} after you loaded it "
                    f"(version {row['version']}, yours {version}): reload and try again"
                )
            if row["label"] != label:
                db.execute(
                    "UPDATE review_cells SET label=?, version=version+1 WHERE run_id=?"
                    " AND sample_id=? AND fov=? AND cell_index=?",
                    (label, run_id, sample_id, fov, cell_index),
                )
                db.execute(
                    "UPDATE review_samples SET version=version+1 WHERE run_id=? AND sample_id=?",
                    (run_id, sample_id),
                )
                drop_submission(db, run_id, sample_id)
                self._log(db, run_id, sample_id, fov, cell_index, "reclassify", row["label"],
                          label, reviewer, reason)  # fmt: skip
            new = db.execute(
                "SELECT * FROM review_cells WHERE run_id=? AND sample_id=? AND fov=?"
                " AND cell_index=?",
                (run_id, sample_id, fov, cell_index),
            ).fetchone()
        return ReviewCell(fov, cell_index, new["original"], new["label"], bool(new["flagged"]),
                          new["version"])  # fmt: skip

    def release(
        self,
        run_id: str,
        sample_id: str,
        *,
        reviewer: str,
        version: int,
        partial: bool = False,
        reason: str = "",
        verification: bool = False,
    ) -> ReviewState:
        """Sign the sample off: released and locked. `version` is the sample version seen.

        The lab's release rules (`gates.py`) are checked in the same transaction; ReleaseRefused
        names the rule. Each release is kept in `review_releases`; a release after a reopening
        is a correction of the one before. With `verification`, a second, different person's
        release is needed (`release.py`).
        """
        reviewer = check_reviewer(reviewer)
        with self._write() as db:
            sample = self._open_state(db, run_id, sample_id)
            if sample["state"] == "released":
                raise ReviewConflict(
                    f"sample {sample_id!r} is already released (by {sample['reviewer']})"
                )
            self._check_version(sample, version)

            def log(before: str, after: str, who: str, why: str) -> str:
                return self._log(db, run_id, sample_id, None, None, "release", before, after,
                                 who, why)  # fmt: skip

            release_in(
                db, sample, reviewer=reviewer, partial=partial, reason=reason,
                verification=verification, log=log,
            )  # fmt: skip
        return self._state(run_id, sample_id)

    def reopen(
        self, run_id: str, sample_id: str, *, reviewer: str, reason: str, version: int
    ) -> ReviewState:
        """Unlock a released sample for changes; the reason is required and audited."""
        reviewer, reason = check_reviewer(reviewer), check_reason(reason)
        with self._write() as db:
            sample = self._open_state(db, run_id, sample_id)
            if sample["state"] != "released":
                raise ReviewConflict(f"sample {sample_id!r} is not released: nothing to reopen")
            self._check_version(sample, version)
            db.execute(
                "UPDATE review_samples SET state='open', version=version+1, reviewer='',"
                " released_s=NULL, release_kind='', release_reason='' WHERE run_id=?"
                " AND sample_id=?",
                (run_id, sample_id),
            )
            drop_submission(db, run_id, sample_id)
            self._log(db, run_id, sample_id, None, None, "reopen", "released", "open",
                      reviewer, reason)  # fmt: skip
        return self._state(run_id, sample_id)

    def comment(
        self, run_id: str, sample_id: str, fov: int | None, cell_index: int | None, text: str,
        *, reviewer: str,
    ) -> None:  # fmt: skip
        """Attach a comment (3-500 printable characters) to a cell, or with fov None to the
        sample, as an audit row; it changes no label, so it is allowed after release too."""
        reviewer, text = check_reviewer(reviewer), check_reason(text)
        with self._write() as db:
            self._open_state(db, run_id, sample_id)
            if (
                fov is not None
                and not db.execute(
                    "SELECT 1 FROM review_cells WHERE run_id=? AND sample_id=? AND fov=?"
                    " AND cell_index=?",
                    (run_id, sample_id, fov, cell_index),
                ).fetchone()
            ):
                raise ParameterError(
                    f"cell {fov}/{cell_index} is not one of sample {sample_id!r}'s counted cells"
                )
            self._log(db, run_id, sample_id, fov, cell_index, "comment", "", "", reviewer, text)

    @staticmethod
    def _check_version(sample: sqlite3.Row, version: int) -> None:
        if sample["version"] != version:
            raise ReviewConflict(
                f"sample {sample['sample_id']!r} changed after you loaded it (version "
                f"{sample['version']}, yours {version}): reload and check it again"
            )

    def _state(self, run_id: str, sample_id: str) -> ReviewState:
        state = self.state(run_id, sample_id)
        assert state is not None
        return state

    @staticmethod
    def _log(
        db: sqlite3.Connection,
        run_id: str,
        sample_id: str,
        fov: int | None,
        cell_index: int | None,
        action: str,
        before: str,
        after: str,
        reviewer: str,
        reason: str,
    ) -> str:
        """Append one chained audit row; its hash."""
        return append_audit(
            db,
            {
                "run_id": run_id, "sample_id": sample_id, "fov": fov, "cell_index": cell_index,
                "action": action, "from_label": before, "to_label": after, "reviewer": reviewer,
                "time_s": time.time(), "reason": reason,
            },
        )  # fmt: skip

    def head(self) -> str:
        """The audit chain's newest hash."""
        if not self._has_tables:
            return GENESIS
        try:
            return chain_head(self._db)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    def verify(self) -> list[str]:
        """Every problem in the review records, first bad row first ([] when intact)."""
        if not self._has_tables:
            return []
        try:
            return verify(self._db, WHITE_CLASSES)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None
