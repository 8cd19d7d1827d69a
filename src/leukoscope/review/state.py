"""What the review page shows of one sample, as a JSON-ready dict: original and reviewed
differentials with their 95% intervals, the review state and every counted cell in review order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leukoscope.results.field_notes import FocusField, focus_fields
from leukoscope.results.release_gates import Evidence
from leukoscope.results.review_records import ReviewCell, ReviewState, reviewed_summary
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore
from leukoscope.types import CellResult, SampleSummary


@dataclass(frozen=True)
class SampleFacts:
    """What never changes once a sample is finished: its summary, classifier results, failed
    fields (fov, reason) and target."""

    summary: SampleSummary
    results: dict[tuple[int, int], CellResult]
    failed_fields: tuple[tuple[int, str], ...] = ()
    target_cells: int = 0
    focus_fields: tuple[FocusField, ...] = ()  # flagged focus_low or failed out_of_focus


def sample_facts(results: ResultStore, run_id: str, sample_id: str) -> SampleFacts:
    """The finished sample's original summary, its counted cells' results and failed fields."""
    counted = results.counted_results(run_id, sample_id)
    failed = results.query(
        "SELECT fov, reason FROM fields WHERE run_id=? AND sample_id=? AND status='failed'"
        " ORDER BY fov",
        (run_id, sample_id),
    )
    target = results.query(
        "SELECT target_cells FROM samples WHERE run_id=? AND sample_id=?", (run_id, sample_id)
    )
    return SampleFacts(
        results.summary(run_id, sample_id),
        {(r.key.fov, r.key.cell_index): r for r in counted},
        tuple((int(r[0]), str(r[1])) for r in failed),
        int(target[0][0]) if target else 0,
        focus_fields(results, run_id, sample_id),
    )


def unopened_cells(facts: SampleFacts) -> list[ReviewCell]:
    """The cells a review would start from: the classifier's counted cells, unchanged."""
    return [
        ReviewCell(fov, index, r.cell_class.value, r.cell_class.value, r.flagged, 0)
        for (fov, index), r in sorted(facts.results.items())
    ]


def evidence_state(evidence: Evidence) -> dict[str, Any]:
    """The model and validation behind the sample, as the page shows them."""
    validation = evidence.validation
    return {
        "model_sha256": evidence.model_sha256,
        "rig_digest": evidence.rig_digest,
        "releasable": not evidence.why_not,
        "why_not": evidence.why_not,
        "validation": None
        if validation is None
        else {
            "id": validation.id,
            "created_s": validation.created_s,
            "validated_by": validation.validated_by,
            "samples": validation.samples,
            "accuracy": validation.accuracy,
            "largest_bias_pp": validation.largest_bias_pp,
            "largest_bias_class": validation.largest_bias_class,
        },
    }


def differential(summary: SampleSummary) -> list[dict[str, Any]]:
    """Per class: count, percent and its 95% interval."""
    return [
        {
            "cell_class": c.cell_class.value,
            "count": c.count,
            "percent": c.percent,
            "ci_low_percent": c.ci_low_percent,
            "ci_high_percent": c.ci_high_percent,
        }
        for c in summary.classes
    ]


def review_order(cells: list[ReviewCell], facts: SampleFacts) -> list[ReviewCell]:
    """The cells to review first: flagged, then least confident; ties in (fov, cell) order."""

    def confidence(cell: ReviewCell) -> float:
        result = facts.results.get((cell.fov, cell.cell_index))
        return max(result.probabilities, default=0.0) if result else 0.0

    return sorted(cells, key=lambda c: (not c.flagged, confidence(c), c.fov, c.cell_index))


def _cell(cell: ReviewCell, facts: SampleFacts) -> dict[str, Any]:
    result = facts.results.get((cell.fov, cell.cell_index))
    return {
        "fov": cell.fov,
        "cell_index": cell.cell_index,
        "original": cell.original,
        "label": cell.label,
        "flagged": cell.flagged,
        "flag_reason": result.flag_reason if result else "",
        "probability": max(result.probabilities, default=0.0) if result else 0.0,
        "version": cell.version,
    }


def page_state(
    reviews: ReviewStore, facts: SampleFacts, run_id: str, sample_id: str
) -> dict[str, Any]:
    """The review page's data for one sample; one never opened for review shows the
    classifier's cells (version 0), as opening it would copy them."""
    state: ReviewState | None = reviews.state(run_id, sample_id)
    cells = reviews.cells(run_id, sample_id) if state is not None else unopened_cells(facts)
    reviewed = reviewed_summary(facts.summary, cells)
    summary = facts.summary
    flagged_fields = sorted({c.fov for c in cells if c.flagged})
    return {
        "run_id": run_id,
        "sample_id": sample_id,
        "status": facts.summary.status.value,
        "status_reason": facts.summary.status_reason,
        "simulated": facts.summary.simulated,
        "state": state.state if state else "open",
        "version": state.version if state else 0,
        "reviewer": state.reviewer if state else "",
        "released_s": state.released_s if state else None,
        "release_kind": state.release_kind if state else "",
        "release_reason": state.release_reason if state else "",
        "releases": state.releases if state else 0,
        "submitted_by": state.submitted_by if state else "",
        "target_cells": facts.target_cells,
        "fields_done": summary.fields_done,
        "fields_failed": [{"fov": fov, "reason": why} for fov, why in facts.failed_fields],
        "flagged_fields": flagged_fields,
        "focus_flagged_fields": [f.to_json() for f in facts.focus_fields],
        "evidence": evidence_state(reviews.evidence(run_id, sample_id)),
        "original": differential(facts.summary),
        "reviewed": differential(reviewed),
        "counted_original": facts.summary.cells_counted,
        "counted_reviewed": reviewed.cells_counted,
        "artefacts": sum(c.label == "ARTEFACT" for c in cells),
        "smudges": sum(c.label == "SMUDGE" for c in cells),
        "unidentified": reviewed.cells_unidentified,
        "cells": [_cell(c, facts) for c in review_order(cells, facts)],
    }
