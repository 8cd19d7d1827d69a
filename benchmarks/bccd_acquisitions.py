"""Turn the BCCD blood-smear photographs into saved acquisitions at the rig's 0.25 um/px + labels.

    .venv/bin/python benchmarks/bccd_acquisitions.py $BCCD runs/bccd
    .venv/bin/python benchmarks/bccd_acquisitions.py SRC OUT --fields 8,132,0,1 --per-sample 4

Writes OUT/<sample>/ (acquisition.json + fov_NNNN.ome.tif, one saved acquisition per
`--per-sample` usable fields, samples `bccd-01`, `bccd-02`, ...), OUT/labels.csv (the labels file
`leukoscope dataset build` and `validate` read), OUT/conversion.json (which BCCD image became which
field, its WBC boxes in frame pixels, and every skipped image with the reason) and OUT/LICENSE.

Conversion (one fixed transform for every field, as a camera would see it):

- Scale: the source is about 0.072 um/px (the median red-cell box is 104 px wide, a red cell about
  7.5 um), area-averaged to the rig's 0.25 um/px: 640 x 480 -> 184 x 138 px.
- color1, color2, color3 = the blue, green and red planes (a mono camera under blue, green and red
  light sees roughly one plane each), 8 bits.
- fluorescence = the haematoxylin optical density from colour deconvolution
  (`skimage.color.rgb2hed`, Ruifrok & Johnston 2001) as the nuclear-stain surrogate, scaled to
  8 bits with one fixed gain (OD 0.15 = 255; nuclei are about 0.07-0.13, the background 0.02).

Labels: one row per white-cell (WBC) box: the box centre, the class from BCCD's labels.csv. An image
is skipped (and listed with the reason) when it has no class, no WBC box, a different number of
boxes than classes, or two different classes (which box holds which is not recorded, so any
assignment would be a guess); two boxes with the same class are unambiguous and kept.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from leukoscope.acquisition_files import storage
from leukoscope.types import MODALITIES, FrameSet, Modality

SOURCE_UM_PER_PX = 0.072  # 7.5 um red cell / 104 px median red-cell box
TARGET_UM_PER_PX = 0.25
HAEMATOXYLIN_FULL_SCALE = 0.15  # optical density mapped to 255
EXPOSURE_US = {m: 2000.0 for m in MODALITIES} | {Modality.FLUORESCENCE: 20000.0}
CLASS_NAMES = {
    "NEUTROPHIL": "NEU",
    "LYMPHOCYTE": "LYM",
    "MONOCYTE": "MO",
    "EOSINOPHIL": "EOS",
    "BASOPHIL": "BAS",
}


@dataclass(frozen=True)
class SourceField:
    """One BCCD photograph: its number, WBC boxes (x0, y0, x1, y1, source px) and classes."""

    image: int
    boxes: tuple[tuple[float, float, float, float], ...]
    classes: tuple[str, ...]


def read_classes(path: Path) -> dict[int, tuple[str, ...]]:
    """BCCD labels.csv: image number -> classes (empty tuple when the row has no category)."""
    out: dict[int, tuple[str, ...]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            names = [n.strip().upper() for n in (row.get("Category") or "").split(",")]
            out[int(row["Image"])] = tuple(CLASS_NAMES[n] for n in names if n)
    return out


def read_boxes(path: Path, name: str = "WBC") -> tuple[tuple[float, float, float, float], ...]:
    """The boxes of one object name in a Pascal-VOC annotation, in file order, 0-based pixels."""
    boxes = []
    for item in ET.parse(path).getroot().iter("object"):
        if (item.findtext("name") or "").strip() != name:
            continue
        box = item.find("bndbox")
        assert box is not None
        # Pascal-VOC pixel coordinates start at 1
        boxes.append(
            tuple(float(box.findtext(k) or 1) - 1 for k in ("xmin", "ymin", "xmax", "ymax"))
        )
    return tuple(boxes)  # type: ignore[arg-type]


def scale() -> float:
    """Source pixels per target pixel's worth: target coordinate = (source + 0.5) * s - 0.5."""
    return SOURCE_UM_PER_PX / TARGET_UM_PER_PX


def to_target(x: float) -> float:
    """A source pixel coordinate in the resampled frame."""
    return (x + 0.5) * scale() - 0.5


def convert_image(bgr: np.ndarray) -> dict[Modality, np.ndarray]:
    """The four 8-bit modality frames of one photograph (OpenCV's BGR order in)."""
    from skimage.color import rgb2hed

    height, width = bgr.shape[:2]
    size = (round(width * scale()), round(height * scale()))
    haematoxylin = rgb2hed(bgr[..., ::-1])[..., 0].astype(np.float32)
    fluorescence = np.clip(haematoxylin / HAEMATOXYLIN_FULL_SCALE, 0.0, 1.0) * 255.0
    planes = {
        Modality.COLOR1: bgr[..., 0],
        Modality.COLOR2: bgr[..., 1],
        Modality.COLOR3: bgr[..., 2],
        Modality.FLUORESCENCE: fluorescence,
    }
    return {
        m: np.clip(np.round(cv2.resize(p, size, interpolation=cv2.INTER_AREA)), 0, 255).astype(
            np.uint8
        )
        for m, p in planes.items()
    }


def read_source(root: Path, image: int) -> np.ndarray:
    """The BGR photograph of image `image`."""
    bgr = cv2.imread(str(root / "JPEGImages" / f"BloodImage_{image:05d}.jpg"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read image {image} under {root}")
    return bgr


def source_fields(root: Path) -> list[SourceField]:
    """Every annotated image with its WBC boxes and classes, in image order."""
    classes = read_classes(root / "labels.csv")
    fields = []
    for xml in sorted((root / "Annotations").glob("BloodImage_*.xml")):
        number = int(xml.stem.split("_")[1])
        fields.append(SourceField(number, read_boxes(xml), classes.get(number, ())))
    return fields


def skip_reason(field: SourceField) -> str:
    """Why an image cannot be labelled unambiguously ('' when it can)."""
    if not field.classes:
        return "no class in labels.csv"
    if not field.boxes:
        return "no WBC box"
    if len(field.boxes) != len(field.classes):
        return f"{len(field.boxes)} WBC box(es) for {len(field.classes)} class(es)"
    if len(set(field.classes)) > 1:
        return f"classes {', '.join(field.classes)}: which box is which is not recorded"
    return ""


def write_sample(
    out: Path, sample: str, fields: list[SourceField], root: Path, part: str = ""
) -> list[dict]:
    """One saved acquisition of `fields`; the labels rows and conversion records."""
    frames = [convert_image(read_source(root, f.image)) for f in fields]
    shape = frames[0][Modality.COLOR1].shape
    meta = storage.AcquisitionMeta(
        sample_id=sample,
        modalities=list(MODALITIES),
        pixel_size_um=TARGET_UM_PER_PX,
        bit_depth=8,
        frame_shape=(int(shape[0]), int(shape[1])),
        channels=[
            storage.ChannelMeta(modality=m, exposure_us=EXPOSURE_US[m], intensity_percent=50.0)
            for m in MODALITIES
        ],
        settings_digest="bccd",
        fields=len(fields),
    )
    folder = out / sample
    storage.write_acquisition_meta(folder, meta)
    records = []
    for fov, (field, planes) in enumerate(zip(fields, frames, strict=True)):
        frameset = FrameSet(
            sample_id=sample,
            fov=fov,
            modalities=MODALITIES,
            frames=tuple(planes[m] for m in MODALITIES),
            timestamps_s=(0.0,) * 4,
            exposures_us=tuple(EXPOSURE_US[m] for m in MODALITIES),
            lit=MODALITIES,
            shifts_px=((0.0, 0.0),) * 4,
            settings_digest="bccd",
            pixel_size_um=TARGET_UM_PER_PX,
            bit_depth=8,
        )
        storage.write_field(folder, frameset)
        boxes = [[round(to_target(v), 2) for v in box] for box in field.boxes]
        records.append(
            {
                "part": part,
                "sample": sample,
                "fov": fov,
                "image": field.image,
                "boxes": boxes,
                "classes": list(field.classes),
                "frame_shape": [int(shape[0]), int(shape[1])],
            }
        )
    return records


def write_labels(path: Path, records: list[dict]) -> int:
    """The labels file: one row per WBC box, at the box centre."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample", "fov", "x_px", "y_px", "class", "annotator"])
        for record in records:
            for box, cell_class in zip(record["boxes"], record["classes"], strict=True):
                x = (box[0] + box[2]) / 2
                y = (box[1] + box[3]) / 2
                writer.writerow(
                    [record["sample"], record["fov"], f"{x:.1f}", f"{y:.1f}", cell_class, "BCCD"]
                )
                rows += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source", type=Path, help="the BCCD dataset folder (JPEGImages/, Annotations/, labels.csv)"
    )
    parser.add_argument("out", type=Path, help="folder to write (must not exist)")
    parser.add_argument("--per-sample", type=int, default=20, help="fields per acquisition")
    parser.add_argument("--fields", default="", help="only these image numbers (comma-separated)")
    parser.add_argument("--prefix", default="bccd", help="sample id prefix")
    parser.add_argument(
        "--split", type=int, default=0, help="first N samples to OUT/train, the rest to OUT/test"
    )
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose a new folder")
    wanted = {int(n) for n in args.fields.split(",") if n.strip()}
    usable, skipped = [], []
    for field in source_fields(args.source):
        if wanted and field.image not in wanted:
            continue
        reason = skip_reason(field)
        if reason:
            skipped.append({"image": field.image, "reason": reason})
        else:
            usable.append(field)
    if wanted:  # keep the order asked for (so a test set can put chosen fields together)
        order = [int(n) for n in args.fields.split(",") if n.strip()]
        usable.sort(key=lambda f: order.index(f.image))
    staging = args.out.with_name(f".{args.out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    records: list[dict] = []
    samples = 0
    for start in range(0, len(usable), args.per_sample):
        samples += 1
        sample = f"{args.prefix}-{samples:02d}"
        part = "" if not args.split else ("train" if samples <= args.split else "test")
        records += write_sample(
            staging / part, sample, usable[start : start + args.per_sample], args.source, part
        )
        print(
            f"{part}/{sample}: {min(args.per_sample, len(usable) - start)} fields", file=sys.stderr
        )
    parts = {r["sample"]: r["part"] for r in records}
    labels = 0
    for part in sorted(set(parts.values())):
        mine = [r for r in records if r["part"] == part]
        labels += write_labels(staging / part / "labels.csv", mine)
    shutil.copy(args.source / "LICENSE", staging / "LICENSE")
    summary = {
        "source": str(args.source),
        "source_um_per_px": SOURCE_UM_PER_PX,
        "pixel_size_um": TARGET_UM_PER_PX,
        "haematoxylin_full_scale": HAEMATOXYLIN_FULL_SCALE,
        "fields": records,
        "skipped": skipped,
    }
    (staging / "conversion.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    staging.rename(args.out)
    where = " and ".join(f"{args.out / p}" for p in sorted(set(parts.values()))) or str(args.out)
    print(
        f"wrote {len(records)} fields ({labels} labelled white cells) in {samples} acquisitions "
        f"to {where} (labels.csv in each); skipped {len(skipped)} image(s), see conversion.json"
    )
    for item in skipped:
        print(f"  skipped image {item['image']}: {item['reason']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
