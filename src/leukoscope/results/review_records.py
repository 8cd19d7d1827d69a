"""What a review is made of, without the database: the labels a reviewer may give (five classes,
ARTEFACT, SMUDGE), the checks on reviewer names and reasons, the rows (cells, sample state, audit)
and the reviewed differential they make."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from leukoscope.errors import LeukoscopeError, ParameterError
from leukoscope.results.counts import class_counts
from leukoscope.results.review_schema import ARTEFACT, LABELS, SMUDGE, UNIDENTIFIED_LABEL
from leukoscope.types import CELL_CLASSES, NOT_WHITE, CellClass, SampleSummary

NOT_WHITE_LABELS: tuple[str, ...] = tuple(c.value for c in NOT_WHITE)
"""Labels of nucleated cells that are not white cells (NRBC): counted beside the differential."""

REVIEWER_MAX = 64
REASON_MAX = 500
_REVIEWER_RE = re.compile(r"^[^\W\d_][\w .,'-]{0,63}$")


class ReviewConflict(LeukoscopeError, RuntimeError):
    """A review change refused: stale (someone else changed it first) or the sample is locked."""


def check_label(value: str) -> str:
    """`value` upper-cased if it is a class, ARTEFACT or SMUDGE; else ParameterError."""
    label = value.strip().upper() if isinstance(value, str) else ""
    if label not in LABELS:
        raise ParameterError(f"label {value!r} is not allowed: use one of {', '.join(LABELS)}")
    return label


def check_reviewer(value: str) -> str:
    """The reviewer's name, trimmed: 1-64 letters, digits, spaces and . , ' - starting with a
    letter; else ParameterError."""
    name = value.strip() if isinstance(value, str) else ""
    if not _REVIEWER_RE.fullmatch(name):
        raise ParameterError(
            f"reviewer name {value!r} is not allowed: use 1-{REVIEWER_MAX} letters, digits, "
            "spaces and . , ' - starting with a letter"
        )
    return name


def check_reason(value: str) -> str:
    """A reason, trimmed: 3-500 printable characters (no control characters)."""
    reason = value.strip() if isinstance(value, str) else ""
    if not 3 <= len(reason) <= REASON_MAX or not reason.isprintable():
        raise ParameterError(
            f"a reason of 3-{REASON_MAX} printable characters on one line is required"
        )
    return reason


@dataclass(frozen=True)
class ReviewCell:
    """One originally counted cell under review."""

    fov: int
    cell_index: int
    original: str
    label: str
    flagged: bool
    version: int

    @property
    def counted(self) -> bool:
        """The reviewed differential counts it (a white-cell class, not ARTEFACT, SMUDGE,
        UNIDENTIFIED or NRBC)."""
        return self.label not in (ARTEFACT, SMUDGE, UNIDENTIFIED_LABEL, *NOT_WHITE_LABELS)


@dataclass(frozen=True)
class ReviewState:
    """A sample's review: open or released, its version, who released it and when."""

    run_id: str
    sample_id: str
    state: str
    version: int
    opened_s: float
    reviewer: str
    released_s: float | None
    edits: int  # audit rows (reclassifications, releases, reopenings)
    release_kind: str = ""  # "final" or "partial" while released
    release_reason: str = ""  # why a partial release is partial
    releases: int = 0  # how many times it was released (2 and more: corrections)
    submitted_by: str = ""  # who submitted it for a second person's verification
    submitted_kind: str = ""
    submitted_reason: str = ""

    @property
    def released(self) -> bool:
        """Signed off and locked."""
        return self.state == "released"


@dataclass(frozen=True)
class ReleaseRecord:
    """One released version of a sample, kept for ever (`release_no` 2 and more correct the
    one before)."""

    run_id: str
    sample_id: str
    release_no: int
    kind: str  # "final" | "partial"
    reason: str
    reviewer: str
    released_s: float
    model_sha256: str
    rig_digest: str
    validation_id: int
    differential: dict[str, Any]  # counts per class, counted, artefacts, smudges, flagged
    verified_by: str = ""  # the second person, where the lab requires one
    chain_head: str = ""  # the hash of its audit row: the chain it was released on

    @property
    def correction(self) -> bool:
        """This release replaces an earlier one."""
        return self.release_no > 1


@dataclass(frozen=True)
class AuditRow:
    """One append-only audit entry (fov and cell_index are None for release and reopen)."""

    id: int
    run_id: str
    sample_id: str
    fov: int | None
    cell_index: int | None
    action: str
    from_label: str
    to_label: str
    reviewer: str
    time_s: float
    reason: str
    prev_hash: str = ""  # the row before it in the chain
    row_hash: str = ""  # SHA-256 over prev_hash and this row (results/review_chain.py)


def reviewed_summary(original: SampleSummary, cells: list[ReviewCell]) -> SampleSummary:
    """The differential over the reviewed labels (ARTEFACT and SMUDGE leave it; a cell still
    UNIDENTIFIED stays out of it and is counted as unidentified); the rest of the summary
    (fields, status, timings) is the original's."""
    counts = dict.fromkeys(CELL_CLASSES, 0)
    flagged = 0
    for cell in cells:
        if cell.counted:
            counts[CellClass(cell.label)] = counts.get(CellClass(cell.label), 0) + 1
            flagged += int(cell.flagged)
    white = sum(counts.values())
    nrbc = sum(c.label in NOT_WHITE_LABELS for c in cells)
    return original.model_copy(
        update={
            "classes": class_counts(counts),
            "cells_counted": white,
            "nrbc": nrbc,
            "nrbc_per_100_wbc": 100.0 * nrbc / white if white else 0.0,
            "cells_flagged": flagged,
            "cells_unidentified": sum(c.label == UNIDENTIFIED_LABEL for c in cells),
        }
    )
