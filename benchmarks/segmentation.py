"""Segmentation recall and precision against the simulator's ground truth, and its speed.

    .venv/bin/python benchmarks/segmentation.py --fields 100 --seed 0
    .venv/bin/python benchmarks/segmentation.py --fields 30 --density 40   # crowded: many touching
    .venv/bin/python benchmarks/segmentation.py --fields 30 --debris 1.5 --smudge 0.2  # hard cases x10

A detection matches a true white cell when its centre lies inside the cell (distance to the true centre
<= the cell's radius); matching is one-to-one, nearest first. Cells cut by the frame border are
"don't care": segmentation drops them on purpose, so neither finding nor missing one counts. Recall =
matched / true cells not cut; precision = matched / detections not matching a cut cell. Pairs of true
cells closer than 2 um between outlines are reported as "touching" with their own recall. The hard
cases the simulator draws besides white cells (platelets, debris, smudge cells; all "not white cells")
count against precision when detected; detections on each are reported apart.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field

from leukoscope.config import load_settings
from leukoscope.instrument.simulator.frames import capture_frameset
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.instrument.simulator.truth import FieldTruth, WhiteCell
from leukoscope.pipeline.segmentation import Detection, SegmentationParams, detect, segment
from leukoscope.types import Modality


@dataclass
class Score:
    """Counts over all fields."""

    true_cells: int = 0
    found: int = 0
    detections: int = 0
    false_positives: int = 0
    touching: int = 0
    touching_found: int = 0
    smudge: int = 0
    smudge_detected: int = 0
    debris: int = 0
    debris_detected: int = 0
    platelets: int = 0
    platelets_detected: int = 0
    false_on: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("smudge", "debris", "platelet", "nothing drawn"), 0)
    )
    misses: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    detect_ms: list[float] = field(default_factory=list)
    segment_ms: list[float] = field(default_factory=list)
    segment_cpu_ms: list[float] = field(default_factory=list)


def _touching(cells: tuple[WhiteCell, ...], pixel_size_um: float) -> set[int]:
    near = set()
    for a in cells:
        for b in cells:
            if a.index < b.index:
                gap = math.dist(a.centre_yx, b.centre_yx) - a.shape.extent_px - b.shape.extent_px
                if gap * pixel_size_um < 2.0:
                    near |= {a.index, b.index}
    return near


def score_field(
    fov: int, cells: tuple[WhiteCell, ...], found: list[Detection], pixel_size_um: float, s: Score
) -> None:
    """Match detections to true cells one-to-one, nearest first, and add to `s`."""
    pairs = sorted(
        (math.dist(c.centre_yx, d.centre_yx), ci, di)
        for ci, c in enumerate(cells)
        for di, d in enumerate(found)
        if math.dist(c.centre_yx, d.centre_yx) <= c.radius_px
    )
    cell_of: dict[int, int] = {}
    used: set[int] = set()
    for _, ci, di in pairs:
        if ci not in cell_of.values() and di not in used:
            cell_of[di] = ci
            used.add(di)
    matched_cells = set(cell_of.values())
    touching = _touching(cells, pixel_size_um)
    for ci, cell in enumerate(cells):
        if cell.cut_by_border:
            continue
        s.true_cells += 1
        s.touching += cell.index in touching
        if ci in matched_cells:
            s.found += 1
            s.touching_found += cell.index in touching
        else:
            s.misses.append(
                f"fov {fov} cell {cell.index} {cell.cell_class.value} at {cell.centre_yx}"
            )
    for di, det in enumerate(found):
        if di in cell_of and cells[cell_of[di]].cut_by_border:
            continue
        s.detections += 1
        if di not in cell_of:
            s.false_positives += 1
            y, x = det.centre_yx
            s.extras.append(f"fov {fov} detection at ({y:.0f}, {x:.0f}) area {det.area_px:.0f} px")


def score_hard_cases(truth: FieldTruth, found: list[Detection], s: Score) -> None:
    """Count the smudge cells, debris and platelets of a field and the detections lying on them
    (a detection on a white cell is not one of these)."""
    free = [
        d
        for d in found
        if not any(math.dist(c.centre_yx, d.centre_yx) <= c.radius_px for c in truth.cells)
    ]

    def hit(centre: tuple[float, float], reach: float) -> bool:
        return any(math.dist(centre, d.centre_yx) <= reach for d in free)

    s.smudge += len(truth.smudge)
    s.smudge_detected += sum(hit(m.centre_yx, m.radius_px) for m in truth.smudge)
    s.debris += len(truth.debris)
    s.debris_detected += sum(hit(m.centre_yx, m.radius_px + 4) for m in truth.debris)
    s.platelets += len(truth.platelets)
    s.platelets_detected += sum(hit(m.centre_yx, m.radius_px + 4) for m in truth.platelets)
    for d in free:  # each false detection once, on what it lies (a smudge cell first)
        if any(math.dist(m.centre_yx, d.centre_yx) <= m.radius_px for m in truth.smudge):
            s.false_on["smudge"] += 1
        elif any(math.dist(m.centre_yx, d.centre_yx) <= m.radius_px + 4 for m in truth.debris):
            s.false_on["debris"] += 1
        elif any(math.dist(m.centre_yx, d.centre_yx) <= m.radius_px + 4 for m in truth.platelets):
            s.false_on["platelet"] += 1
        else:
            s.false_on["nothing drawn"] += 1


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--density", type=float, default=None, help="white cells per field")
    parser.add_argument(
        "--platelets", type=float, default=None, help="platelets per 1000 um^2 (default 0.6)"
    )
    parser.add_argument(
        "--debris", type=float, default=None, help="debris per 1000 um^2 (default 0.15)"
    )
    parser.add_argument(
        "--smudge", type=float, default=None, help="smudge cells per white cell (default 0.02)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    # [pipeline.segmentation] of $LEUKOSCOPE_CONFIG and LEUKOSCOPE__PIPELINE__SEGMENTATION__* overrides
    seg_params = SegmentationParams.from_config(load_settings().pipeline.segmentation)

    chosen: dict[str, float] = {}
    if args.density is not None:
        chosen["wbc_per_field"] = args.density
    if args.platelets is not None:
        chosen["platelets_per_1000um2"] = args.platelets
    if args.debris is not None:
        chosen["debris_per_1000um2"] = args.debris
    if args.smudge is not None:
        chosen["smudge_fraction"] = args.smudge
    params = SampleParams(**chosen)  # type: ignore[arg-type]
    sample = SimulatedSample(seed=args.seed, params=params)
    renderer, sensor = FieldRenderer(sample), Sensor()
    score = Score()
    started = time.perf_counter()
    for fov in range(args.fields):
        frameset = capture_frameset(renderer, sensor, "bench", fov)
        fluorescence = frameset.frame(Modality.FLUORESCENCE)
        t0 = time.perf_counter()
        found = detect(fluorescence, frameset.pixel_size_um, seg_params)
        t1, c1 = time.perf_counter(), time.process_time()
        segment(frameset, params=seg_params)
        t2, c2 = time.perf_counter(), time.process_time()
        score.segment_cpu_ms.append(1000 * (c2 - c1))
        score.detect_ms.append(1000 * (t1 - t0))
        score.segment_ms.append(1000 * (t2 - t1))
        score_field(fov, sample.field(fov).cells, found, frameset.pixel_size_um, score)
        score_hard_cases(sample.field(fov), found, score)

    recall = score.found / max(score.true_cells, 1)
    precision = (score.detections - score.false_positives) / max(score.detections, 1)
    shape = "x".join(str(v) for v in params.frame_shape)
    figures = {
        "fields": args.fields,
        "seed": args.seed,
        "wbc_per_field": params.wbc_per_field,
        "frame": shape,
        "pixel_size_um": params.pixel_size_um,
        "true_cells": score.true_cells,
        "detections": score.detections,
        "recall": recall,
        "precision": precision,
        "touching_cells": score.touching,
        "touching_recall": score.touching_found / max(score.touching, 1),
        "platelets_per_1000um2": params.platelets_per_1000um2,
        "debris_per_1000um2": params.debris_per_1000um2,
        "smudge_fraction": params.smudge_fraction,
        "platelets": score.platelets,
        "platelets_detected": score.platelets_detected,
        "debris": score.debris,
        "debris_detected": score.debris_detected,
        "smudge": score.smudge,
        "smudge_detected": score.smudge_detected,
        "false_detections_on": score.false_on,
        "detect_ms_median": statistics.median(score.detect_ms),
        "segment_with_crops_ms_median": statistics.median(score.segment_ms),
        "segment_with_crops_cpu_ms_median": statistics.median(score.segment_cpu_ms),
        "wall_s": time.perf_counter() - started,
    }
    print(f"segmentation on {args.fields} simulated fields ({shape}, seed {args.seed}, "
          f"{params.wbc_per_field:g} white cells/field)")  # fmt: skip
    print(f"  true cells (not cut by the border): {score.true_cells}")
    print(f"  recall    {recall:.4f}  ({score.found}/{score.true_cells})")
    print(f"  precision {precision:.4f}  "
          f"({score.detections - score.false_positives}/{score.detections})")  # fmt: skip
    print(f"  touching cells: {score.touching}, recall {figures['touching_recall']:.4f}")
    print(f"  not white cells detected: platelets {score.platelets_detected}/{score.platelets}, "
          f"debris {score.debris_detected}/{score.debris}, "
          f"smudge cells {score.smudge_detected}/{score.smudge}")  # fmt: skip
    print("  false detections (not on a white cell), on: "
          + ", ".join(f"{k} {v}" for k, v in score.false_on.items()))  # fmt: skip
    print(f"  detect {figures['detect_ms_median']:.1f} ms/field, "
          f"detect + 4-modality crops {figures['segment_with_crops_ms_median']:.1f} ms/field "
          f"(median wall time; CPU time {figures['segment_with_crops_cpu_ms_median']:.1f} ms)")  # fmt: skip
    for line in score.misses[:10]:
        print(f"  missed: {line}")
    for line in score.extras[:10]:
        print(f"  extra:  {line}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
