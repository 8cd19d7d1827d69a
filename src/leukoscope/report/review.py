"""A sample's review as the report shows it: not reviewed, in review or released, with the
original (classifier's) differential kept beside the reviewed one."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from leukoscope.errors import StorageError
from leukoscope.results.release_gates import Evidence
from leukoscope.results.review_records import ReleaseRecord, ReviewCell, reviewed_summary
from leukoscope.results.review_store import ReviewStore
from leukoscope.types import CellClass, CellResult, SampleSummary

NOT_REVIEWED, IN_REVIEW, RELEASED = "not reviewed", "in review", "released"


@dataclass(frozen=True)
class ReviewInfo:
    """What the report says of the review; `original` is the classifier's summary."""

    state: str  # NOT_REVIEWED, IN_REVIEW (changed, not signed off) or RELEASED
    reviewer: str
    released_s: float | None
    original: SampleSummary
    changes: int  # cells now of another class than the classifier's (net: changed back is none)
    artefacts: int
    smudges: int
    cells: tuple[ReviewCell, ...]
    release_kind: str = ""  # "final" | "partial" while released
    release_reason: str = ""  # why a partial release is partial
    releases: tuple[ReleaseRecord, ...] = ()  # every released version, first first
    reopen_reasons: tuple[str, ...] = ()  # why it was reopened, oldest first
    evidence: Evidence | None = None  # the model, rig set-up and validation behind the results

    @property
    def current_release(self) -> ReleaseRecord | None:
        """The release in force (None unless released)."""
        return self.releases[-1] if self.state == RELEASED and self.releases else None

    @property
    def reviewed(self) -> bool:
        """A review exists: the report shows the reviewed differential."""
        return self.state != NOT_REVIEWED


def read_review(
    database: Path | str,
    run_id: str,
    sample_id: str,
    original: SampleSummary,
    evidence: Evidence | None = None,
) -> ReviewInfo:
    """The sample's review read from the database (read-only; never reviewed: NOT_REVIEWED);
    `evidence` as the caller read it already, else as the review store reads it."""
    with ReviewStore(database, read_only=True) as reviews:
        state = reviews.state(run_id, sample_id)
        cells = tuple(reviews.cells(run_id, sample_id))
        audit = reviews.audit(run_id, sample_id)
        broken = reviews.verify()
        if broken:
            raise StorageError(
                f"{database}: the review records were changed outside the review: {broken[0]} "
                "(`leukoscope verify` lists every problem)"
            )
        releases = tuple(reviews.releases(run_id, sample_id))
        evidence = evidence or reviews.evidence(run_id, sample_id)
    changes = sum(c.label != c.original and c.counted for c in cells)
    if state is None or (not state.released and not audit):
        status = NOT_REVIEWED
    else:
        status = RELEASED if state.released else IN_REVIEW
    return ReviewInfo(
        state=status,
        reviewer=state.reviewer if state and state.released else "",
        released_s=state.released_s if state and state.released else None,
        original=original,
        changes=changes,
        artefacts=sum(c.label == "ARTEFACT" for c in cells),
        smudges=sum(c.label == "SMUDGE" for c in cells),
        cells=cells,
        release_kind=state.release_kind if state and state.released else "",
        release_reason=state.release_reason if state and state.released else "",
        releases=releases,
        reopen_reasons=tuple(a.reason for a in audit if a.action == "reopen"),
        evidence=evidence,
    )


def reviewed_view(
    info: ReviewInfo, results: list[CellResult]
) -> tuple[SampleSummary, list[CellResult]]:
    """The summary and counted cells to report: the reviewed ones once a review exists (cells
    relabelled; artefacts and smudges left out), else the original ones unchanged."""
    if not info.reviewed:
        return info.original, results
    labels = {(c.fov, c.cell_index): c.label for c in info.cells}
    shown = []
    for result in results:
        label = labels.get((result.key.fov, result.key.cell_index), result.cell_class.value)
        if label in CellClass.__members__:
            shown.append(replace(result, cell_class=CellClass(label)))
    return reviewed_summary(info.original, list(info.cells)), shown
