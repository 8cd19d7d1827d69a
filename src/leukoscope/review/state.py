"""What the review page shows of one sample, as a JSON-ready dict: original and reviewed
differentials with their 95% intervals, the review state and every counted cell in review order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leukoscope.pipeline.store import ResultStore
from leukoscope.review.records import ReviewCell, ReviewState, reviewed_summary
from leukoscope.review.store import ReviewStore
from leukoscope.types import CellResult, SampleSummary


@dataclass(frozen=True)
class SampleFacts:
    """What never changes once a sample is finished: its summary and classifier results."""

    summary: SampleSummary
    results: dict[tuple[int, int], CellResult]


def sample_facts(results: ResultStore, run_id: str, sample_id: str) -> SampleFacts:
    """The finished sample's original summary and its counted cells' results."""
    counted = results.counted_results(run_id, sample_id)
    return SampleFacts(
        results.summary(run_id, sample_id),
        {(r.key.fov, r.key.cell_index): r for r in counted},
    )


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
    """The review page's data for one sample (opened for review beforehand)."""
    state: ReviewState | None = reviews.state(run_id, sample_id)
    cells = reviews.cells(run_id, sample_id)
    reviewed = reviewed_summary(facts.summary, cells)
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
        "original": differential(facts.summary),
        "reviewed": differential(reviewed),
        "counted_original": facts.summary.cells_counted,
        "counted_reviewed": reviewed.cells_counted,
        "artefacts": sum(c.label == "ARTEFACT" for c in cells),
        "smudges": sum(c.label == "SMUDGE" for c in cells),
        "cells": [_cell(c, facts) for c in review_order(cells, facts)],
    }
