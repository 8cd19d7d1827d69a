"""The acceptance criteria (`[validation]`) applied to a validation's figures: PASS or FAIL, with
every criterion that failed named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leukoscope.config import ValidationConfig


@dataclass(frozen=True)
class Verdict:
    """PASS or FAIL, what failed, and the figures the criteria were applied to."""

    verdict: str
    failed: tuple[str, ...]
    samples: int
    cells: int
    segmentation_recall: float | None
    accuracy: float | None
    largest_bias_pp: float | None
    largest_bias_class: str
    coverage: float | None

    def figures(self) -> dict[str, Any]:
        """The figures as JSON."""
        return {
            "samples": self.samples,
            "cells": self.cells,
            "segmentation_recall": self.segmentation_recall,
            "accuracy": self.accuracy,
            "largest_bias_pp": self.largest_bias_pp,
            "largest_bias_class": self.largest_bias_class,
            "coverage": self.coverage,
        }


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _recall(segmentation: Mapping[str, Any], whole_only: bool) -> float | None:
    if whole_only and segmentation.get("whole_labels"):
        return segmentation.get("recall_whole")
    return segmentation.get("recall")


def judge(data: Mapping[str, Any], criteria: ValidationConfig) -> Verdict:
    """Apply `criteria` to the figures of `validation.run` (`segmentation`, `classification`,
    `samples`, `agreement`); a missing figure fails its criterion."""
    failed: list[str] = []
    samples = len(data["samples"])
    if samples < criteria.min_samples:
        failed.append(f"samples: {samples}, fewer than the minimum {criteria.min_samples}")
    recall = _recall(data["segmentation"], criteria.recall_whole_cells_only)
    which = "segmentation recall" + (" (whole cells)" if criteria.recall_whole_cells_only else "")
    if recall is None:
        failed.append(f"{which}: no labelled white cell to measure it on")
    elif recall < criteria.min_segmentation_recall:
        failed.append(
            f"{which}: {_pct(recall)}, below the minimum {_pct(criteria.min_segmentation_recall)}"
        )
    cls = data["classification"]
    accuracy = cls.get("accuracy")
    if accuracy is None:
        failed.append("accuracy: no matched white cell to measure it on")
    elif accuracy < criteria.min_accuracy:
        failed.append(
            f"accuracy: {_pct(accuracy)}, below the minimum {_pct(criteria.min_accuracy)}"
        )
    worst, worst_class = None, ""
    per_class = data["agreement"]["per_class"]
    for name in per_class:  # the five, then any further class the samples hold
        bias = per_class[name]["bias_pp"]
        if bias is None:
            continue
        if worst is None or abs(bias) > worst:
            worst, worst_class = abs(bias), name
        limit = criteria.max_bias_pp.get(name)
        if limit is not None and abs(bias) > limit:
            failed.append(f"bias {name}: {bias:+.1f} pp, beyond the limit +-{limit:g} pp")
    if worst is None:
        failed.append("bias: no sample with a differential to compare")
    coverage = data["agreement"].get("coverage")
    if coverage is None:
        failed.append("reference inside the 95 % interval: no interval to check")
    elif coverage < criteria.min_coverage:
        failed.append(
            f"reference inside the 95 % interval: {_pct(coverage)}, below the minimum "
            f"{_pct(criteria.min_coverage)}"
        )
    return Verdict(
        verdict="FAIL" if failed else "PASS",
        failed=tuple(failed),
        samples=samples,
        cells=int(cls.get("cells") or 0),
        segmentation_recall=recall,
        accuracy=accuracy,
        largest_bias_pp=worst,
        largest_bias_class=worst_class,
        coverage=coverage,
    )
