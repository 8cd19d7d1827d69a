"""How real the simulator is: the same statistics on simulated fields and on the real BCCD fields.

Both sources are measured at the rig's 0.25 um/px with the same code:

- white-cell diameter per class (BCCD: the WBC box side at benchmarks/bccd_acquisitions.py's
  0.072 um/px; simulator: twice the true cell radius);
- red-cell diameter (BCCD: RBC boxes wholly inside the frame; simulator: its parameter, it keeps no
  red-cell ground truth) and platelet density (BCCD boxes per 1000 um^2; simulator: its ground truth);
- red-cell coverage: share of the field darker than Otsu's threshold in color2 (green light,
  absorbed by haemoglobin), white cells included (they are a few percent of a field);
- nucleus area (um^2) and lobe count per class, the same rule on both cell sets' nuclear channel
  (simulator: fluorescence; BCCD: haematoxylin density): Otsu's threshold per 24 um crop;
- texture per light: coefficient of variation of the central 8 um disc of each cell crop;
- intensity per light: 5th / 50th / 95th percentile of each field, as a share of full scale;
- separability per single light: 5-fold stratified cross-validated balanced accuracy of one small
  fixed classifier (standardised 16 x 16 pixels of the 24 um crop, logistic regression, C = 0.1),
  on NEU / LYM / MO / EOS (BCCD has 2 basophils); simulator cells subsampled to BCCD's class counts.

    .venv/bin/python benchmarks/realism.py $BCCD runs/bccd_cells SIM_DATASET

(`runs/bccd_cells` from benchmarks/bccd_cells.py, SIM_DATASET from `leukoscope simulate dataset`.)
Prints one Markdown table per statistic; nothing is tuned here.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from bccd_acquisitions import (
    SOURCE_UM_PER_PX,
    convert_image,
    read_boxes,
    read_classes,
    read_source,
)
from leukoscope.acquisition_files.storage import list_fields, read_field
from leukoscope.classifier.data import CellDataset, load_dataset, native_input_size
from leukoscope.instrument.simulator.acquisition import (
    GROUND_TRUTH_FILE,
    generate_acquisition,
)
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.types import CELL_CLASSES, MODALITIES, Modality

CLASSES = ("NEU", "LYM", "MO", "EOS")


def quartiles(values: list[float]) -> str:
    """'median [q1, q3] (n)'."""
    if not values:
        return "-"
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return f"{q2:.1f} [{q1:.1f}, {q3:.1f}] (n={len(values)})"


def inside(values: list[float], reference: list[float]) -> str:
    """Whether the median of `values` lies inside the interquartile range of `reference`."""
    if not values or not reference:
        return "-"
    q1, q3 = np.percentile(reference, [25, 75])
    return "yes" if q1 <= float(np.median(values)) <= q3 else "no"


def coverage(color2: np.ndarray) -> float:
    """Share of a field darker than Otsu's threshold in the green-light frame."""
    scaled = cv2.normalize(color2, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    threshold, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float((scaled < threshold).mean())


def percentiles(frame: np.ndarray, full_scale: float) -> tuple[float, float, float]:
    """5th, 50th and 95th percentile as a share of full scale."""
    p5, p50, p95 = np.percentile(frame, [5, 50, 95]) / full_scale
    return float(p5), float(p50), float(p95)


def bccd_statistics(root: Path, fields: int) -> dict[str, list[float]]:
    """Sizes, densities, coverage and intensities of the BCCD fields."""
    stats: dict[str, list[float]] = {}
    classes = read_classes(root / "labels.csv")
    annotations = sorted((root / "Annotations").glob("BloodImage_*.xml"))
    for index, xml in enumerate(annotations):
        number = int(xml.stem.split("_")[1])
        size = ET.parse(xml).getroot().find("size")
        width = float(size.findtext("width", "640")) if size is not None else 640.0
        height = float(size.findtext("height", "480")) if size is not None else 480.0
        wbc = read_boxes(xml, "WBC")
        label = classes.get(number, ())
        if len(wbc) == 1 and len(label) == 1 and label[0] in CLASSES:
            x0, y0, x1, y1 = wbc[0]
            if x0 > 1 and y0 > 1 and x1 < width - 2 and y1 < height - 2:
                side = ((x1 - x0) + (y1 - y0)) / 2 * SOURCE_UM_PER_PX
                stats.setdefault(f"wbc_{label[0]}", []).append(side)
        for x0, y0, x1, y1 in read_boxes(xml, "RBC"):
            if x0 > 1 and y0 > 1 and x1 < width - 2 and y1 < height - 2:
                stats.setdefault("rbc", []).append(((x1 - x0) + (y1 - y0)) / 2 * SOURCE_UM_PER_PX)
        area_um2 = width * height * SOURCE_UM_PER_PX**2
        platelets = len(read_boxes(xml, "Platelets"))
        stats.setdefault("platelets_per_1000um2", []).append(1000.0 * platelets / area_um2)
        if index < fields:
            try:
                frames = convert_image(read_source(root, number))
            except SystemExit:
                continue
            stats.setdefault("coverage", []).append(coverage(frames[Modality.COLOR2]))
            for modality in MODALITIES:
                for name, value in zip(
                    ("p5", "p50", "p95"), percentiles(frames[modality], 255.0), strict=True
                ):
                    stats.setdefault(f"{modality.value}_{name}", []).append(value)
    return stats


def simulator_statistics(fields: int, seed: int) -> dict[str, list[float]]:
    """The same statistics on freshly simulated fields (2048 x 2048, the simulator's defaults)."""
    import json

    stats: dict[str, list[float]] = {}
    params = SampleParams()
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / "sim"
        generate_acquisition(out, "realism", fields, seed=seed)
        truth = json.loads((out / GROUND_TRUTH_FILE).read_text(encoding="utf-8"))
        for cell in truth["cells"]:
            if cell["class"] in CLASSES and not cell["cut_by_border"]:
                diameter = 2 * cell["radius_px"] * params.pixel_size_um
                stats.setdefault(f"wbc_{cell['class']}", []).append(diameter)
        for fov in list_fields(out):
            frameset = read_field(out, fov)
            bits = frameset.bit_depth or 8 * frameset.frames[0].dtype.itemsize
            full = float(2**bits - 1)
            frames = dict(zip(frameset.modalities, frameset.frames, strict=True))
            stats.setdefault("coverage", []).append(coverage(frames[Modality.COLOR2]))
            for modality in MODALITIES:
                values = percentiles(frames[modality], full)
                for name, value in zip(("p5", "p50", "p95"), values, strict=True):
                    stats.setdefault(f"{modality.value}_{name}", []).append(value)
    stats["rbc"] = [params.rbc_diameter_um]
    field_um2 = params.frame_shape[0] * params.frame_shape[1] * params.pixel_size_um**2
    per_field = [0] * fields
    for platelet in truth.get("platelets", []):
        per_field[platelet["field"]] += 1
    stats["platelets_per_1000um2"] = [1000.0 * n / field_um2 for n in per_field]
    return stats


CROP_UM = 24.0
"""Side of a cell crop (the pipeline's cut), um: both cell sets are cut this way."""


def load_cells(cells: Path) -> CellDataset:
    """A cell set at its crops' own side (both per-cell statistics read it)."""
    return load_dataset(cells, native_input_size(cells))


def nucleus_statistics(dataset: CellDataset) -> dict[str, list[float]]:
    """Nucleus area (um^2) and lobe count per class, from each crop's nuclear channel (fluorescence;
    BCCD: haematoxylin density): Otsu's threshold on the crop, the pieces of at least 1 um^2 whose
    centre lies within 7 um of the crop's centre; lobes = those pieces (lobes joined by a visible
    strand count as one, on both sources)."""
    from skimage.filters import threshold_otsu

    side = dataset.images.shape[-1]
    um_per_px = CROP_UM / side
    nuclear = dataset.modalities.index(Modality.FLUORESCENCE)
    stats: dict[str, list[float]] = {}
    for image, label in zip(dataset.images[:, nuclear, 0], dataset.labels, strict=True):
        name = CELL_CLASSES[int(label)].value
        if name not in CLASSES:
            continue
        crop = image.astype(np.float32)
        mask = (crop > threshold_otsu(crop)).astype(np.uint8)
        _, _, boxes, centres = cv2.connectedComponentsWithStats(mask, connectivity=8)
        areas = boxes[1:, cv2.CC_STAT_AREA] * um_per_px**2
        near = np.hypot(*(centres[1:] - side / 2).T) * um_per_px <= 7.0
        kept = (areas >= 1.0) & near
        stats.setdefault(f"nucleus_um2_{name}", []).append(float(areas[kept].sum()))
        stats.setdefault(f"lobes_{name}", []).append(float(kept.sum()))
    return stats


def texture_statistics(dataset: CellDataset) -> dict[str, list[float]]:
    """Texture per light: the coefficient of variation (std / mean, in %) of each crop's central 8 um
    disc, where the cell is; scale-free, so a JPEG photograph and a raw camera compare."""
    side = dataset.images.shape[-1]
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    disc = np.hypot(yy, xx) * (CROP_UM / side) <= 4.0
    stats: dict[str, list[float]] = {}
    for m, modality in enumerate(dataset.modalities):
        values = dataset.images[:, m, 0][:, disc].astype(np.float64)
        mean = values.mean(axis=1)
        cv = values.std(axis=1) / np.maximum(mean, 1e-9)
        stats[f"texture_cv_{modality.value}"] = (100.0 * cv[mean > 0]).tolist()  # %
    return stats


def separability(data: Path, per_class: dict[str, int] | None, seed: int) -> dict[str, float]:
    """Balanced accuracy per single light of the fixed classifier (5-fold stratified CV)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    dataset = load_dataset(data, 16)
    wanted = [
        list(CELL_CLASSES).index(next(c for c in CELL_CLASSES if c.value == n)) for n in CLASSES
    ]
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for index, name in zip(wanted, CLASSES, strict=True):
        cells = np.flatnonzero(dataset.labels == index)
        if per_class is not None:
            cells = rng.choice(cells, size=min(per_class[name], len(cells)), replace=False)
        chosen.extend(cells.tolist())
    picked = np.asarray(sorted(chosen))
    labels = dataset.labels[picked]
    result = {}
    for m, modality in enumerate(dataset.modalities):
        x = dataset.images[picked, m].reshape(len(picked), -1).astype(np.float64)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        predicted = cross_val_predict(model, x, labels, cv=folds)
        recalls = [float((predicted[labels == c] == c).mean()) for c in np.unique(labels)]
        result[modality.value] = 100.0 * statistics.mean(recalls)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "bccd", type=Path, help="the BCCD dataset folder (JPEGImages/, Annotations/, labels.csv)"
    )
    parser.add_argument("bccd_cells", type=Path, help="benchmarks/bccd_cells.py output")
    parser.add_argument("sim_cells", type=Path, help="a `leukoscope simulate dataset` folder")
    parser.add_argument("--fields", type=int, default=8, help="fields per source for images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    real_cells, sim_cells = load_cells(args.bccd_cells), load_cells(args.sim_cells)
    real = bccd_statistics(args.bccd, args.fields)
    real |= nucleus_statistics(real_cells) | texture_statistics(real_cells)
    sim = simulator_statistics(args.fields, args.seed)
    sim |= nucleus_statistics(sim_cells) | texture_statistics(sim_cells)
    print(
        "| statistic | BCCD (real) median [IQR] (n) | simulator median [IQR] (n) | simulator median inside real IQR |"
    )
    print("| --- | --- | --- | --- |")
    rows = [f"wbc_{c}" for c in CLASSES]
    rows += [f"{kind}_{c}" for kind in ("nucleus_um2", "lobes") for c in CLASSES]
    rows += ["rbc", "platelets_per_1000um2", "coverage"]
    rows += [f"{m.value}_{p}" for m in MODALITIES for p in ("p5", "p50", "p95")]
    rows += [f"texture_cv_{m.value}" for m in MODALITIES]
    for key in rows:
        scale = 100.0 if key == "coverage" or key.endswith(("_p5", "_p50", "_p95")) else 1.0
        r = [v * scale for v in real.get(key, [])]
        s = [v * scale for v in sim.get(key, [])]
        print(f"| {key} | {quartiles(r)} | {quartiles(s)} | {inside(s, r)} |")

    counts = {
        name: len(list((args.bccd_cells / "color1" / name).glob("*.png"))) for name in CLASSES
    }
    real_sep = separability(args.bccd_cells, None, args.seed)
    sim_sep = separability(args.sim_cells, counts, args.seed)
    print("\n| light | BCCD balanced accuracy % | simulator balanced accuracy % |")
    print("| --- | --- | --- |")
    for modality in MODALITIES:
        print(
            f"| {modality.value} | {real_sep[modality.value]:.1f} | {sim_sep[modality.value]:.1f} |"
        )
    print(f"\n(cells per class in both: {counts}; fixed classifier, 5-fold stratified CV)")


if __name__ == "__main__":
    main()
