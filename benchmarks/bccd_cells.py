"""Real white cells for training benchmarks: the BCCD white-cell boxes cut as the pipeline cuts cells.

Reads the BCCD dataset folder `$BCCD` (JPEGImages/, Annotations/, labels.csv): every field whose white-cell boxes and label agree on
one cell (one `WBC` box, one class) gives one cell, cut as a 24 um square (the pipeline's
`imaging.crop_cell` at `DEFAULT_CROP_UM`) around the box centre and resized to the pipeline's crop
side at the rig's 0.25 um/px (96 px). The four modalities are made as the README describes: the
blue, green and red planes as color1, color2, color3 and the haematoxylin optical density (colour
deconvolution, Ruifrok & Johnston 2001) as the nuclear-stain surrogate for fluorescence.

    .venv/bin/python benchmarks/bccd_cells.py $BCCD runs/bccd_cells

Writes the training layout `OUT/<modality>/<CLASS>/bccd_<field>.png` (8-bit) and `OUT/cells.csv`.
This is a benchmark helper, not the runtime path: a lab's own acquisitions go through
`leukoscope dataset build`.
"""

from __future__ import annotations

import argparse
import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from bccd_acquisitions import CLASS_NAMES  # benchmarks/ is the script's folder
from leukoscope.imaging import crop_cell, crop_side_px
from leukoscope.limits import DEFAULT_CROP_UM

BCCD_UM_PER_PX = 0.06
"""Pixel size of the BCCD photographs in the sample plane, from the README (a white cell is ~200 px).
benchmarks/bccd_acquisitions.py measures 0.072 from the red-cell boxes; the recipe ablation in
docs/results.md was cut at 0.06 (a 24 um crop here spans about 29 um of the slide)."""
RIG_UM_PER_PX = 0.25
# Ruifrok & Johnston's haematoxylin / eosin / DAB optical-density vectors (rows), as in scikit-image.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)
HAEMATOXYLIN_FULL_SCALE = 1.5
"""Haematoxylin optical density (natural log units) mapped to 255: nuclei near the top, background
and red cells near 0 on these fields."""


def haematoxylin(rgb: np.ndarray) -> np.ndarray:
    """The haematoxylin optical density of an RGB uint8 image as uint8 (nuclei bright)."""
    od = -np.log(np.maximum(rgb.astype(np.float64), 1.0) / 255.0)
    density = (od.reshape(-1, 3) @ HED_FROM_RGB)[:, 0].reshape(rgb.shape[:2])
    scaled = np.clip(density / HAEMATOXYLIN_FULL_SCALE, 0.0, 1.0) * 255.0
    return np.round(scaled).astype(np.uint8)


def modalities(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """The four modality images of one RGB field."""
    return {
        "color1": rgb[:, :, 2],
        "color2": rgb[:, :, 1],
        "color3": rgb[:, :, 0],
        "fluorescence": haematoxylin(rgb),
    }


def white_cell_boxes(annotation: Path) -> list[tuple[float, float]]:
    """Centres (y, x) of the `WBC` boxes of a Pascal-VOC annotation."""
    centres = []
    for obj in ET.parse(annotation).getroot().iter("object"):
        if (obj.findtext("name") or "").strip() != "WBC":
            continue
        box = obj.find("bndbox")
        if box is None:
            continue
        x0, x1 = float(box.findtext("xmin", "0")), float(box.findtext("xmax", "0"))
        y0, y1 = float(box.findtext("ymin", "0")), float(box.findtext("ymax", "0"))
        centres.append(((y0 + y1) / 2.0, (x0 + x1) / 2.0))
    return centres


def field_labels(labels_csv: Path) -> dict[int, list[str]]:
    """Field number -> classes (leukoscope names) from the BCCD labels.csv."""
    labels: dict[int, list[str]] = {}
    with labels_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            names = [n.strip() for n in (row.get("Category") or "").split(",") if n.strip()]
            known = [CLASS_NAMES[n] for n in names if n in CLASS_NAMES]
            if known and len(known) == len(names):
                labels[int(row["Image"])] = known
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("bccd", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose a new folder")
    side = crop_side_px(BCCD_UM_PER_PX, DEFAULT_CROP_UM)
    out_px = crop_side_px(RIG_UM_PER_PX, DEFAULT_CROP_UM)
    rows, skipped = [], 0
    for field, classes in sorted(field_labels(args.bccd / "labels.csv").items()):
        stem = f"BloodImage_{field:05d}"
        annotation = args.bccd / "Annotations" / f"{stem}.xml"
        image = cv2.imread(str(args.bccd / "JPEGImages" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
        if image is None or not annotation.is_file():
            skipped += 1
            continue
        centres = white_cell_boxes(annotation)
        if len(centres) != 1 or len(classes) != 1:
            skipped += 1  # which box is which class is not recorded
            continue
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        planes = modalities(rgb)
        crops = crop_cell(list(planes.values()), centres[0], side, out_px)
        for modality, crop in zip(planes, crops, strict=True):
            target = args.out / modality / classes[0] / f"bccd_{field:05d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target), crop)
        rows.append((f"bccd_{field:05d}", field, classes[0], *centres[0]))
    with (args.out / "cells.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cell_id", "field", "class", "y_px", "x_px"])
        writer.writerows(rows)
    counts = {c: sum(1 for r in rows if r[2] == c) for c in CLASS_NAMES.values()}
    print(f"{len(rows)} cells {counts}; {skipped} labelled fields skipped (no single box/class)")


if __name__ == "__main__":
    main()
