"""Figures for docs/simulator.md: a contact sheet (class x modality) and one full field per modality.

    .venv/bin/python benchmarks/simulator_figures.py [--out docs/img] [--seed 3]

Frames are captured at 12 bit and shown with a fixed window per modality (fluorescence stretched,
since it is dim); everything else is exactly what the camera would record.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from leukoscope.types import CellClass, Modality

DISPLAY = {"color1": (0, 4095), "color2": (0, 4095), "color3": (0, 4095), "fluorescence": (0, 500)}


def _to8(image: np.ndarray, modality: str) -> np.ndarray:
    lo, hi = DISPLAY[modality]
    return np.clip((image.astype(np.float32) - lo) * 255.0 / (hi - lo), 0, 255).astype(np.uint8)


def contact_sheet(out: Path, seed: int, per_class: int) -> Path:
    """Each class (rows) x each modality (columns), `per_class` cells per class."""
    from leukoscope.instrument.simulator.dataset import FieldCells
    from leukoscope.types import CELL_CLASSES, MODALITIES

    source = FieldCells(seed=seed, bit_depth=12)
    found: dict[CellClass, list[dict[Modality, np.ndarray]]] = {c: [] for c in CELL_CLASSES}
    for cell_class, crops, _ in source.cells({c: per_class for c in CELL_CLASSES}):
        found[cell_class].append(crops)
    side, gap, label_w, head_h = source.out_px, 4, 70, 26
    width = label_w + per_class * (len(MODALITIES) * (side + gap) + 3 * gap)
    rows = []
    header = np.full((head_h, width), 255, np.uint8)
    for k in range(per_class):
        for j, m in enumerate(MODALITIES):
            x = label_w + k * (len(MODALITIES) * (side + gap) + 3 * gap) + j * (side + gap)
            name = "fluor." if m.value == "fluorescence" else m.value
            cv2.putText(header, name, (x + 4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0, 1)
    rows.append(header)
    for cell_class in CELL_CLASSES:
        row = np.full((side + gap, width), 255, np.uint8)
        cv2.putText(row, cell_class.value, (8, side // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 0, 2)
        for k, crops in enumerate(found[cell_class]):
            for j, m in enumerate(MODALITIES):
                x = label_w + k * (len(MODALITIES) * (side + gap) + 3 * gap) + j * (side + gap)
                row[:side, x : x + side] = _to8(crops[m], m.value)
        rows.append(row)
    path = out / "contact_sheet.png"
    cv2.imwrite(str(path), np.vstack(rows))
    return path


def fields(out: Path, seed: int, size: int) -> list[Path]:
    """One full default-size field under each light, downscaled to `size` px."""
    from leukoscope.instrument.simulator.frames import CaptureSettings, capture_frameset
    from leukoscope.instrument.simulator.params import SampleParams
    from leukoscope.instrument.simulator.render import FieldRenderer
    from leukoscope.instrument.simulator.sample import SimulatedSample
    from leukoscope.instrument.simulator.sensor import Sensor

    sample = SimulatedSample(seed, SampleParams(wbc_per_field=14.0))
    fov = max(range(20), key=lambda f: len({c.cell_class for c in sample.field(f).cells}))
    frameset = capture_frameset(FieldRenderer(sample), Sensor(), "docs", fov, CaptureSettings())
    paths = []
    for modality, frame in zip(frameset.modalities, frameset.frames, strict=True):
        small = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        path = out / f"field_{modality.value}.png"
        cv2.imwrite(str(path), _to8(small, modality.value))
        paths.append(path)
    classes = ", ".join(c.cell_class.value for c in sample.field(fov).cells)
    print(f"field {fov} of seed {seed}: {classes}")
    return paths


def main() -> None:
    """Write the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--field-size", type=int, default=768)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(contact_sheet(args.out, args.seed, args.per_class))
    for path in fields(args.out, args.seed, args.field_size):
        print(path)


if __name__ == "__main__":
    main()
