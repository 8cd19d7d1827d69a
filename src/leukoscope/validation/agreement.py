"""Method comparison of the pipeline against a labelled reference (after CLSI H20-A2).

Per cell: segmentation recall/precision and, on matched white cells, the confusion matrix, accuracy,
macro-F1 and per-class precision/recall. Per sample: the pipeline's differential beside the
reference's, whether each reference share lies inside the pipeline's 95 % Clopper-Pearson interval
(and the pipeline's share inside the reference's), per-class bias and Bland-Altman limits of
agreement (mean difference +- 1.96 SD of the per-sample differences, in percentage points).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leukoscope.results.counts import clopper_pearson
from leukoscope.types import (
    CELL_CLASSES,
    NOT_WHITE,
    CellClass,
    CellResult,
    ClassCount,
    SampleSummary,
)
from leukoscope.validation.labels import Label
from leukoscope.validation.matching import match_points

CLASS_NAMES = [c.value for c in CELL_CLASSES]
"""The five; the figures name them always, then every further class the labels or cells hold."""
NOT_WHITE_NAMES = frozenset(c.value for c in NOT_WHITE)
WHOLE_MARGIN_UM = 10.0
"""A label this far from every frame edge marks a cell that is certainly whole (half the largest
white cell); segmentation drops cells cut by the border by design, so recall is also given over these."""


def class_names(found: Iterable[str]) -> list[str]:
    """The five, then the further classes among `found`, in `CellClass` order."""
    present = set(found)
    return [c.value for c in CellClass if c.value in CLASS_NAMES or c.value in present]


def result_point(result: CellResult) -> tuple[float, float]:
    """The stored cell's match point: the centre of its nucleus box (as `detection_point`)."""
    x, y, width, height = result.bbox
    return y + (height - 1) / 2, x + (width - 1) / 2


@dataclass
class SampleMatch:
    """The labels and pipeline cells of one sample, and how they pair up."""

    sample: str
    labels: list[Label]
    results: list[CellResult]
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (label index, result index)
    labelled_fields: set[int] = field(default_factory=set)
    whole: set[int] = field(default_factory=set)  # labels at least WHOLE_MARGIN_UM from the edges


def match_sample(
    sample: str,
    labels: Sequence[Label],
    results: Sequence[CellResult],
    pixel_size_um: float,
    radius_um: float,
    frame_shape: tuple[int, int],
) -> SampleMatch:
    """Match a sample's labels to its stored cells field by field (one-to-one, nearest first)."""
    match = SampleMatch(sample, list(labels), list(results))
    match.labelled_fields = {lb.fov for lb in labels}
    margin = WHOLE_MARGIN_UM / pixel_size_um
    height, width = frame_shape
    match.whole = {
        i
        for i, lb in enumerate(labels)
        if margin <= lb.x_px <= width - 1 - margin and margin <= lb.y_px <= height - 1 - margin
    }
    for fov in sorted(match.labelled_fields):
        li = [i for i, lb in enumerate(labels) if lb.fov == fov]
        ri = [j for j, r in enumerate(results) if r.key.fov == fov]
        pairs = match_points(
            [(labels[i].y_px, labels[i].x_px) for i in li],
            [result_point(results[j]) for j in ri],
            radius_um / pixel_size_um,
        )
        match.pairs += [(li[a], ri[b]) for a, b in pairs]
    return match


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def segmentation_figures(matches: Sequence[SampleMatch]) -> dict[str, Any]:
    """Recall over white-cell labels, precision over detections in labelled fields."""
    wbc = found = detections = true_detections = whole = whole_found = 0
    for m in matches:
        matched = dict(m.pairs)
        wbc += sum(lb.is_white_cell for lb in m.labels)
        found += sum(m.labels[i].is_white_cell for i in matched)
        whole += sum(m.labels[i].is_white_cell for i in m.whole)
        whole_found += sum(m.labels[i].is_white_cell for i in matched if i in m.whole)
        in_fields = [j for j, r in enumerate(m.results) if r.key.fov in m.labelled_fields]
        detections += len(in_fields)
        true_detections += sum(m.labels[i].is_white_cell for i in matched)
    return {
        "white_cell_labels": wbc,
        "found": found,
        "recall": _ratio(found, wbc),
        "whole_margin_um": WHOLE_MARGIN_UM,
        "whole_labels": whole,
        "whole_found": whole_found,
        "recall_whole": _ratio(whole_found, whole),
        "detections": detections,
        "true_detections": true_detections,
        "precision": _ratio(true_detections, detections),
    }


def classification_figures(matches: Sequence[SampleMatch]) -> dict[str, Any]:
    """Confusion (rows = reference, columns = pipeline) and its figures, on matched labelled cells,
    over the five and every further class the labels or the matched cells hold."""
    pairs = [
        (m.labels[i].cell_class, m.results[j].cell_class.value)
        for m in matches
        for i, j in m.pairs
        if m.labels[i].is_white_cell
    ]
    names = class_names(name for pair in pairs for name in pair)
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    for truth_name, called in pairs:
        confusion[names.index(truth_name), names.index(called)] += 1
    total = int(confusion.sum())
    per_class = {}
    f1s = []
    for k, name in enumerate(names):
        tp = int(confusion[k, k])
        truth, predicted = int(confusion[k].sum()), int(confusion[:, k].sum())
        precision, recall = _ratio(tp, predicted), _ratio(tp, truth)
        f1 = _ratio(2 * tp, truth + predicted)
        per_class[name] = {
            "reference": truth,
            "predicted": predicted,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
        if truth:  # macro-F1 over the classes the reference holds
            f1s.append(f1 or 0.0)
    return {
        "cells": total,
        "confusion": confusion.tolist(),
        "accuracy": _ratio(int(np.trace(confusion)), total),
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "per_class": per_class,
    }


def _absent(name: str, cells: int) -> ClassCount:
    """A class the pipeline counted no cell of: 0 of `cells`, with its 95 % interval."""
    low, high = clopper_pearson(0, cells)
    return ClassCount(
        cell_class=CellClass(name),
        count=0,
        percent=0.0,
        ci_low_percent=100.0 * low,
        ci_high_percent=100.0 * high,
    )


def sample_differential(m: SampleMatch, summary: SampleSummary) -> dict[str, Any]:
    """The pipeline's differential (its stored summary) against the reference labels of a sample,
    over the white-cell classes either holds (nucleated red cells are not white cells)."""
    reference: dict[str, int] = {}
    for label in m.labels:
        if label.is_white_cell and label.cell_class not in NOT_WHITE_NAMES:
            reference[label.cell_class] = reference.get(label.cell_class, 0) + 1
    n_ref = sum(reference.values())
    counted = {c.cell_class.value: c for c in summary.classes}
    classes = {}
    for name in class_names([*reference, *counted]):
        count = counted.get(name) or _absent(name, summary.cells_counted)
        reference.setdefault(name, 0)
        ref_pct = 100.0 * reference[name] / n_ref if n_ref else None
        low, high = clopper_pearson(reference[name], n_ref) if n_ref else (0.0, 1.0)
        classes[name] = {
            "pipeline_count": count.count,
            "pipeline_percent": count.percent,
            "pipeline_ci_percent": [count.ci_low_percent, count.ci_high_percent],
            "reference_count": reference[name],
            "reference_percent": ref_pct,
            "reference_ci_percent": [100.0 * low, 100.0 * high],
            "difference_pp": None if ref_pct is None else count.percent - ref_pct,
            "reference_inside_pipeline_ci": None
            if ref_pct is None or summary.cells_counted == 0
            else count.ci_low_percent <= ref_pct <= count.ci_high_percent,
            "pipeline_inside_reference_ci": None
            if ref_pct is None
            else 100.0 * low <= count.percent <= 100.0 * high,
        }
    return {
        "sample": m.sample,
        "pipeline_cells": summary.cells_counted,
        "reference_cells": n_ref,
        "status": summary.status.value,
        "classes": classes,
    }


def agreement_figures(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Coverage of the intervals, per-class bias and Bland-Altman limits over samples."""
    inside = [
        c["reference_inside_pipeline_ci"]
        for s in samples
        for c in s["classes"].values()
        if c["reference_inside_pipeline_ci"] is not None
    ]
    inside_ref = [
        c["pipeline_inside_reference_ci"]
        for s in samples
        for c in s["classes"].values()
        if c["pipeline_inside_reference_ci"] is not None
    ]
    per_class = {}
    for name in class_names(name for s in samples for name in s["classes"]):
        diffs = [
            s["classes"][name]["difference_pp"]
            for s in samples
            if name in s["classes"]
            and s["classes"][name]["difference_pp"] is not None
            and s["pipeline_cells"] > 0
        ]
        bias = float(np.mean(diffs)) if diffs else None
        sd = float(np.std(diffs, ddof=1)) if len(diffs) >= 2 else None
        limits = None if bias is None or sd is None else [bias - 1.96 * sd, bias + 1.96 * sd]
        per_class[name] = {"samples": len(diffs), "bias_pp": bias, "sd_pp": sd, "loa_pp": limits}
    return {
        "intervals": len(inside),
        "reference_inside_pipeline_ci": sum(inside),
        "coverage": _ratio(sum(inside), len(inside)),
        "pipeline_inside_reference_ci": sum(inside_ref),
        "coverage_reference_ci": _ratio(sum(inside_ref), len(inside_ref)),
        "per_class": per_class,
    }
