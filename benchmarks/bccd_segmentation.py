"""Segmentation recall and precision on the real BCCD fields (`$BCCD`: the dataset's folder).

    .venv/bin/python benchmarks/bccd_segmentation.py $BCCD
    .venv/bin/python benchmarks/bccd_segmentation.py $BCCD --config leukoscope.toml

Every annotated photograph (all 364, labelled or not) is converted exactly as
`benchmarks/bccd_acquisitions.py` writes acquisitions (0.25 um/px, haematoxylin optical density as
the fluorescence frame) and segmented with `pipeline.segmentation.detect` and the settings of
`[pipeline.segmentation]` (defaults unless --config). A detection matches a WBC box when its centre
lies inside the box; one-to-one, the detection nearest the box centre first.

- recall (inside) = matched / WBC boxes wholly inside the frame (no side on the outermost pixel);
- recall (all) = matched / all WBC boxes (cells cut by the border are dropped by design);
- precision = matched detections / all detections (a detection on a cut cell's box is a true one).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from bccd_acquisitions import convert_image, read_source, source_fields, to_target
from leukoscope.config import load_settings
from leukoscope.pipeline.segmentation import SegmentationParams, detect
from leukoscope.types import Modality


def _inside(box: tuple[float, float, float, float], width: int, height: int) -> bool:
    x0, y0, x1, y1 = box
    return x0 > 0 and y0 > 0 and x1 < width - 1 and y1 < height - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the BCCD folder")
    parser.add_argument("--config", type=Path, default=None, help="leukoscope TOML config")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    params = SegmentationParams.from_config(load_settings(args.config).pipeline.segmentation)
    boxes_inside = boxes_all = found_inside = found_all = detections = 0
    misses, extras = [], []
    seconds = 0.0
    fields = source_fields(args.source)
    for field in fields:
        bgr = read_source(args.source, field.image)
        height, width = bgr.shape[:2]
        frames = convert_image(bgr)
        start = time.perf_counter()
        found = detect(frames[Modality.FLUORESCENCE], 0.25, params)
        seconds += time.perf_counter() - start
        detections += len(found)
        free = set(range(len(found)))
        boxes = sorted(
            field.boxes, key=lambda b: (b[0] + b[2]) / 2 + (b[1] + b[3]) / 2
        )  # deterministic
        for box in boxes:
            inside = _inside(box, width, height)
            boxes_all += 1
            boxes_inside += inside
            tx0, ty0, tx1, ty1 = (to_target(v) for v in box)
            centre = ((ty0 + ty1) / 2, (tx0 + tx1) / 2)
            candidates = [
                (math.dist(found[i].centre_yx, centre), i)
                for i in free
                if ty0 <= found[i].centre_yx[0] <= ty1 and tx0 <= found[i].centre_yx[1] <= tx1
            ]
            if candidates:
                free.discard(min(candidates)[1])
                found_all += 1
                found_inside += inside
            elif inside:
                misses.append(f"image {field.image} box {[round(v) for v in box]}")
        for i in sorted(free):
            y, x = found[i].centre_yx
            extras.append(f"image {field.image} at y={y:.0f} x={x:.0f} (frame px)")
    matched = detections - len(extras)
    figures = {
        "images": len(fields),
        "wbc_boxes": boxes_all,
        "wbc_boxes_inside": boxes_inside,
        "recall_inside": found_inside / max(boxes_inside, 1),
        "found_inside": found_inside,
        "recall_all": found_all / max(boxes_all, 1),
        "found_all": found_all,
        "detections": detections,
        "precision": matched / max(detections, 1),
        "false_detections": len(extras),
        "detect_ms_mean": 1000 * seconds / max(len(fields), 1),
        "misses": misses,
        "extras": extras,
    }
    print(
        f"{len(fields)} images: recall {figures['recall_inside']:.4f} "
        f"({found_inside}/{boxes_inside}) over WBC boxes wholly inside the frame, "
        f"{figures['recall_all']:.4f} ({found_all}/{boxes_all}) over all; precision "
        f"{figures['precision']:.4f} ({matched}/{detections}, {len(extras)} false); "
        f"detect {figures['detect_ms_mean']:.2f} ms/field"
    )
    for line in misses:
        print(f"  missed: {line}", file=sys.stderr)
    for line in extras:
        print(f"  false detection: {line}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
