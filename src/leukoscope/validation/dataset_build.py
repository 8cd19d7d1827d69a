"""`leukoscope dataset build`: labelled saved acquisitions -> the training layout, cut by the pipeline.

Each labelled field is segmented with the pipeline's own `detect` and cut with its own
`crop_detections` (the crops `batch` classifies); each label is matched to the nearest detection
within a radius (one-to-one); a matched white cell is written as `DATA/<modality>/<CLASS>/<id>.png`
(every modality, the frame's bit depth) and a row of `DATA/manifest.csv`. The folder is built beside
DATA and renamed at the end, so DATA is whole or absent; an existing DATA is refused.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leukoscope.acquisition_files import storage
from leukoscope.atomic import atomic_write_bytes, atomic_write_text
from leukoscope.errors import LabelError, ParameterError, StorageError
from leukoscope.pictures.png import encode_png
from leukoscope.pipeline.segmentation import (
    SegmentationParams,
    crop_detections,
    detect,
    detection_point,
)
from leukoscope.spreadsheet import SafeWriter
from leukoscope.types import CELL_CLASSES, NUCLEAR_STAIN
from leukoscope.validation.labels import Label, describe_acquisitions, read_labels
from leukoscope.validation.matching import DEFAULT_RADIUS_UM, match_points
from leukoscope.validation.outdir import refuse_existing, staged_folder

MANIFEST_COLUMNS = (
    "cell_id", "class", "sample", "fov", "acquisition", "label_line", "annotator",
    "label_x_px", "label_y_px", "detection_x_px", "detection_y_px", "distance_um",
    "bbox_x", "bbox_y", "bbox_w", "bbox_h",
)  # fmt: skip


@dataclass
class BuildReport:
    """What a build wrote and what it could not match."""

    out: Path
    counts: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in CELL_CLASSES})
    fields: int = 0
    other_matched: int = 0  # detections labelled OTHER (not written)
    unmatched_labels: list[Label] = field(default_factory=list)
    unmatched_detections: list[tuple[str, int, float, float]] = field(default_factory=list)

    @property
    def cells(self) -> int:
        """Cells written."""
        return sum(self.counts.values())


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = encode_png(image)
    except StorageError:
        raise StorageError(f"{path}: could not write PNG") from None
    atomic_write_bytes(path, data, sync=False)  # the staged folder is renamed whole


def _by_field(labels: Sequence[Label]) -> dict[tuple[str, int], list[Label]]:
    grouped: dict[tuple[str, int], list[Label]] = {}
    for label in labels:
        grouped.setdefault((label.sample, label.fov), []).append(label)
    return grouped


def build_dataset(
    acquisitions: Sequence[Path],
    labels_path: Path,
    out: Path,
    *,
    params: SegmentationParams | None = None,
    radius_um: float = DEFAULT_RADIUS_UM,
    progress: Callable[[int], None] | None = None,
    reviewed: bool = False,
) -> BuildReport:
    """Cut every labelled white cell of `acquisitions` into a training set at `out`.

    `labels_path` is a labels CSV, or with `reviewed` a results database whose released reviews
    are the labels (`validation/reviewed.py`).
    """
    out = Path(out)
    refuse_existing(out)  # before any work, so a mistake costs nothing
    params = params or SegmentationParams()
    found = describe_acquisitions(acquisitions)
    if reviewed:
        from leukoscope.validation.reviewed import reviewed_labels

        labels = reviewed_labels(labels_path, found)
    else:
        labels = read_labels(labels_path, found)
    if not any(label.is_white_cell for label in labels):
        raise LabelError(
            f"{labels_path}: no white-cell labels (every label is OTHER): the training set would be "
            "empty"
        )
    report = BuildReport(out)
    with staged_folder(out) as staging:
        handle = io.StringIO()
        manifest = SafeWriter(handle)  # formula-like text (an annotator's name) neutralised
        manifest.writerow(MANIFEST_COLUMNS)
        for (sample, fov), field_labels in sorted(_by_field(labels).items()):
            acquisition = found[sample]
            frameset = storage.read_field(acquisition.folder, fov)
            if NUCLEAR_STAIN not in frameset.modalities:
                raise ParameterError(
                    f"{acquisition.folder}: no fluorescence frame; segmentation needs one"
                )
            detections = detect(frameset.frame(NUCLEAR_STAIN), frameset.pixel_size_um, params)
            points = [detection_point(d) for d in detections]
            radius_px = radius_um / frameset.pixel_size_um
            pairs = match_points([(lb.y_px, lb.x_px) for lb in field_labels], points, radius_px)
            matched = dict(pairs)
            crops = crop_detections(frameset, detections, params=params)
            for i, label in enumerate(field_labels):
                if i not in matched:
                    report.unmatched_labels.append(label)
                    continue
                j = matched[i]
                if not label.is_white_cell:
                    report.other_matched += 1
                    continue
                cell_id = f"{sample}_f{fov:04d}_c{j:03d}"
                for m, modality in enumerate(frameset.modalities):
                    png = staging / modality.value / label.cell_class / f"{cell_id}.png"
                    _write_png(png, crops[j].crops[m])
                y, x = points[j]
                distance = float(np.hypot(y - label.y_px, x - label.x_px)) * frameset.pixel_size_um
                manifest.writerow(
                    [
                        cell_id, label.cell_class, sample, fov, str(acquisition.folder.resolve()),
                        label.line, label.annotator, f"{label.x_px:.2f}", f"{label.y_px:.2f}",
                        f"{x:.2f}", f"{y:.2f}", f"{distance:.2f}", *detections[j].bbox,
                    ]
                )  # fmt: skip
                report.counts[label.cell_class] = report.counts.get(label.cell_class, 0) + 1
            taken = set(matched.values())
            report.unmatched_detections += [
                (sample, fov, points[j][0], points[j][1])
                for j in range(len(detections))
                if j not in taken
            ]
            report.fields += 1
            if progress is not None:
                progress(1)
        if not sum(report.counts.values()):
            raise LabelError(
                f"{labels_path}: no labelled white cell matched a detected cell: the training set "
                "would be empty"
            )
        atomic_write_text(staging / "manifest.csv", handle.getvalue())
        summary = {
            "labels": str(Path(labels_path).resolve()),
            "labels_from": "released reviews" if reviewed else "labels file",
            "acquisitions": {s: str(a.folder.resolve()) for s, a in found.items()},
            "simulated": any(a.simulated for a in found.values()),
            "radius_um": radius_um,
            "segmentation": vars(params),
            "fields": report.fields,
            "cells": report.counts,
            "other_matched": report.other_matched,
            "unmatched_labels": [
                {"line": lb.line, "sample": lb.sample, "fov": lb.fov, "x_px": lb.x_px,
                 "y_px": lb.y_px, "class": lb.cell_class}
                for lb in report.unmatched_labels
            ],
            "unmatched_detections": [
                {"sample": s, "fov": f, "x_px": round(x, 2), "y_px": round(y, 2)}
                for s, f, y, x in report.unmatched_detections
            ],
        }  # fmt: skip
        atomic_write_text(staging / "build.json", json.dumps(summary, indent=1))
    return report
