"""The field-quality gate on real and simulated fields: what passes, what fails, focus separation.

    .venv/bin/python benchmarks/field_gate.py $BCCD --json runs/field_gate.json

Real: every annotated BCCD photograph, converted as benchmarks/bccd_acquisitions.py does (0.25
um/px, haematoxylin optical density as the fluorescence frame), as it is and with the background
of one colour plane stretched to full scale (its brightest 14 % and 50 % at full scale, as slide
scanners export bright field), through `field_quality.checked(segment)` with the shipped
`[pipeline.quality]` defaults: fields failed, fields noted, and segmentation recall over the WBC
boxes wholly inside the frame (a detection whose centre lies in the box).
Simulated: fields with focus drift 0.35 (defocus factor 1 + |N(0, 0.35)|), the focus measure per
field, ROC AUC separating fields defocused by more than `--factor` (default 1.3) from the rest, and
what the defaults flag and fail.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from bccd_acquisitions import convert_image, read_source, source_fields, to_target
from leukoscope.config import QualityConfig
from leukoscope.errors import FieldQualityError
from leukoscope.instrument.simulator.frames import capture_frameset
from leukoscope.instrument.simulator.params import OpticsParams, SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.pipeline.field_quality import FieldCells, checked
from leukoscope.pipeline.segmentation import segment
from leukoscope.results.quality_kinds import QualityKind
from leukoscope.types import MODALITIES, FrameSet, Modality

BRIGHT = MODALITIES[:3]


def _frameset(frames: dict[Modality, np.ndarray]) -> FrameSet:
    n = len(MODALITIES)
    return FrameSet(
        "bccd", 0, MODALITIES, tuple(frames[m] for m in MODALITIES), (0.0,) * n, (1.0,) * n,
        MODALITIES, ((0.0, 0.0),) * n, bit_depth=8,
    )  # fmt: skip


def _stretch(frames: dict[Modality, np.ndarray], m: Modality, share: float) -> dict:  # type: ignore[type-arg]
    plane = frames[m].astype(np.float64)
    gain = 255.0 / np.percentile(plane, 100 * (1 - share))
    return {**frames, m: np.clip(plane * gain, 0, 255).astype(np.uint8)}


def real(source: Path) -> dict[str, dict[str, float]]:
    gate = checked(functools.partial(segment, out_px=32), QualityConfig())
    variants = {"as is": None} | {
        f"{m.value} {int(s * 100)}% white": (m, s) for m in BRIGHT for s in (0.14, 0.5)
    }
    out: dict[str, dict[str, float]] = {}
    fields = source_fields(source)
    converted = [(f, convert_image(read_source(source, f.image))) for f in fields]
    for name, variant in variants.items():
        failed = noted = boxes = found = 0
        kinds: dict[str, int] = {}
        for field, frames in converted:
            shown = frames if variant is None else _stretch(frames, *variant)
            try:
                cells = gate(_frameset(shown))
            except FieldQualityError as exc:
                failed += 1
                kinds[exc.kind] = kinds.get(exc.kind, 0) + 1
                cells = FieldCells()
            quality = getattr(cells, "quality", None)
            noted += bool(quality and QualityKind.FOCUS_LOW in quality.notes)
            for x0, y0, x1, y1 in field.boxes:
                if not (x0 > 0 and y0 > 0 and x1 < 639 and y1 < 479):
                    continue
                tx0, ty0, tx1, ty1 = (to_target(v) for v in (x0, y0, x1, y1))
                boxes += 1
                found += any(
                    tx0 <= c.bbox[0] + c.bbox[2] / 2 <= tx1 and ty0 <= c.bbox[1] + c.bbox[3] / 2 <= ty1
                    for c in cells
                )  # fmt: skip
        out[name] = {"fields": len(converted), "failed": failed, "focus_low": noted,
                     "recall": found / max(boxes, 1), "found": found, "boxes": boxes, **kinds}  # fmt: skip
        print(f"{name}: {failed} of {len(converted)} failed {kinds or ''}, {noted} focus_low, "
              f"recall {found}/{boxes} = {found / max(boxes, 1):.4f}")  # fmt: skip
    return out


def simulated(seeds: int, fields: int, factor: float) -> dict[str, float]:
    config = QualityConfig()
    gate = checked(functools.partial(segment, out_px=32), config)
    defocus, measure, fails, flags = [], [], [], []
    for seed in range(seeds):
        sample = SimulatedSample(seed, SampleParams(frame_shape=(512, 512), wbc_per_field=8))
        renderer = FieldRenderer(sample, OpticsParams(focus_drift=0.35))
        for fov in range(fields):
            frameset = capture_frameset(renderer, Sensor(), "S", fov)
            defocus.append(renderer.drift(fov).defocus)
            try:
                quality = gate(frameset).quality
                measure.append(quality.focus)
                fails.append(False)
                flags.append(QualityKind.FOCUS_LOW in quality.notes)
            except FieldQualityError as exc:
                measure.append(float(str(exc).split("focus measure ")[1].split(",")[0]))
                fails.append(exc.kind == "out_of_focus")
                flags.append(True)
    d, m = np.array(defocus), np.array(measure)
    blurred = d > factor
    figures = {
        "fields": len(d), "defocused": int(blurred.sum()), "factor": factor,
        "auc": float(roc_auc_score(blurred, -m)),
        "flagged_or_failed_of_defocused": float(np.mean(np.array(flags)[blurred])),
        "flagged_or_failed_of_sharp": float(np.mean(np.array(flags)[~blurred])),
        "failed": int(np.sum(fails)),
        "failed_defocus_min": float(d[np.array(fails)].min()) if any(fails) else 0.0,
    }  # fmt: skip
    print(json.dumps(figures))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, nargs="?", help="the BCCD folder")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--fields", type=int, default=30)
    parser.add_argument("--factor", type=float, default=1.3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = {"simulated": simulated(args.seeds, args.fields, args.factor)}
    if args.source:
        result["real"] = real(args.source)  # type: ignore[assignment]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
