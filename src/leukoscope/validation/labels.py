"""The labels file: one row per labelled white cell of a saved acquisition, checked line by line.

CSV with a header row; columns `sample, fov, x_px, y_px, class` and optionally `annotator`, in any
order. `x_px`, `y_px` are the cell's centre in the field's pixels (0-based, x to the right, y down);
`class` is NEU, LYM, MO, EOS, BAS, a further class a lab labels (IG, NRBC, BLAST, RL) or OTHER (an
object that is not a nucleated cell). Every problem is a LabelError `FILE:LINE: what is wrong`.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from leukoscope.acquisition_files import storage
from leukoscope.errors import LabelError, StorageError
from leukoscope.types import CellClass

OTHER = "OTHER"
LABEL_CLASSES: tuple[str, ...] = (*(c.value for c in CellClass), OTHER)
"""The five, the classes a lab may add (`EXTRA_CLASSES`), then OTHER."""
REQUIRED = ("sample", "fov", "x_px", "y_px", "class")
OPTIONAL = ("annotator",)
DUPLICATE_PX = 1.0
"""Two labels of one field closer than this (pixels) are the same cell labelled twice."""
MAX_LABELS_BYTES = 64 * 1024 * 1024
"""The largest labels file read (64 MiB, read streaming; docs/security.md)."""
MAX_LABEL_ROWS = 1_000_000
"""The most labels one file may hold (docs/security.md)."""


@dataclass(frozen=True)
class Acquisition:
    """What a labels file is checked against: one saved acquisition folder."""

    folder: Path
    sample_id: str
    fields: frozenset[int]
    frame_shape: tuple[int, int]  # height, width
    pixel_size_um: float
    simulated: bool = False  # acquisition.json `simulated`
    settings_digest: str = ""  # acquisition.json `settings_digest` (the rig set-up, with the pixel)


def describe_acquisitions(folders: Sequence[Path]) -> dict[str, Acquisition]:
    """The saved acquisitions by sample id; StorageError for an unusable folder, LabelError when two
    folders hold the same sample."""
    found: dict[str, Acquisition] = {}
    if not folders:
        raise LabelError("no acquisition folder given")
    for folder in folders:
        meta = storage.read_acquisition_meta(folder)
        fields = storage.list_fields(folder)
        if not fields:
            raise StorageError(f"{folder}: no field of view saved")
        if meta.sample_id in found:
            raise LabelError(
                f"{folder}: sample {meta.sample_id!r} is also in {found[meta.sample_id].folder}"
            )
        found[meta.sample_id] = Acquisition(
            Path(folder),
            meta.sample_id,
            frozenset(fields),
            meta.frame_shape,
            meta.pixel_size_um,
            meta.simulated,
            meta.settings_digest,
        )
    return found


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled object: where it is and what the annotator says it is."""

    sample: str
    fov: int
    x_px: float
    y_px: float
    cell_class: str  # one of LABEL_CLASSES
    annotator: str
    line: int  # line of the labels file (1 = the header)

    @property
    def is_white_cell(self) -> bool:
        """True for a labelled cell of a class (the five or a further one; NRBC too, a nucleated cell
        the segmentation finds), False for OTHER."""
        return self.cell_class != OTHER


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LabelError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelError(f"{where}: {what} {text!r} is not a finite number")
    return value


def _header(row: list[str] | None, path: Path) -> list[str]:
    if row is None:
        raise LabelError(f"{path}: empty file; expected a header row {', '.join(REQUIRED)}")
    names = [name.strip().lower() for name in row]
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    if unknown:
        raise LabelError(
            f"{path}:1: unknown column {unknown[0]!r}; expected {', '.join(REQUIRED)}"
            f" and optionally {', '.join(OPTIONAL)}"
        )
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise LabelError(f"{path}:1: missing column {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise LabelError(f"{path}:1: a column is named twice")
    return names


def _parse_row(
    values: dict[str, str], where: str, acquisitions: Mapping[str, Acquisition]
) -> tuple[str, int, float, float, str]:
    sample = values["sample"]
    if sample not in acquisitions:
        known = ", ".join(sorted(acquisitions)) or "none"
        raise LabelError(
            f"{where}: sample {sample!r} is not among the acquisitions given ({known})"
        )
    acquisition = acquisitions[sample]
    try:
        fov = int(values["fov"])
    except ValueError:
        raise LabelError(f"{where}: fov {values['fov']!r} is not a whole number") from None
    if fov not in acquisition.fields:
        raise LabelError(f"{where}: sample {sample!r} has no field {fov} ({acquisition.folder})")
    x = _number(values["x_px"], "x_px", where)
    y = _number(values["y_px"], "y_px", where)
    height, width = acquisition.frame_shape
    if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
        raise LabelError(
            f"{where}: point ({x:g}, {y:g}) lies outside the {width} x {height} px frame"
        )
    cell_class = values["class"].upper()
    if cell_class not in LABEL_CLASSES:
        raise LabelError(
            f"{where}: unknown class {values['class']!r}; expected {', '.join(LABEL_CLASSES)}"
        )
    return acquisition.sample_id, fov, x, y, LABEL_CLASSES[LABEL_CLASSES.index(cell_class)]


def _lines(path: Path) -> Iterator[str]:
    """The labels file's lines, read streaming: a regular file of at most MAX_LABELS_BYTES."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, a generator
    except FileNotFoundError:
        raise LabelError(f"{path}: labels file not found") from None
    except OSError as exc:
        raise LabelError(f"{path}: unreadable labels file ({exc.strerror or exc})") from None
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise LabelError(f"{path}: not a regular file; a labels file is a CSV file")
        if info.st_size > MAX_LABELS_BYTES:
            raise LabelError(
                f"{path}: {info.st_size:,} bytes; a labels file may have at most "
                f"{MAX_LABELS_BYTES:,} bytes"
            )
        total = 0
        while raw := handle.readline(MAX_LABELS_BYTES + 1 - total):
            total += len(raw)
            if total > MAX_LABELS_BYTES:  # the file grew while it was read
                raise LabelError(f"{path}: more than {MAX_LABELS_BYTES:,} bytes")
            try:
                yield raw.decode("utf-8-sig" if total == len(raw) else "utf-8")
            except UnicodeDecodeError as exc:
                raise LabelError(f"{path}: unreadable labels file ({exc})") from None


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, row) of the CSV, at most MAX_LABEL_ROWS rows after the header."""
    try:
        for index, row in enumerate(csv.reader(_lines(path))):
            if index > MAX_LABEL_ROWS:
                raise LabelError(f"{path}: more than {MAX_LABEL_ROWS:,} labels")
            yield index + 1, row
    except csv.Error as exc:
        raise LabelError(f"{path}: not valid CSV ({exc})") from None


def read_labels(path: Path, acquisitions: Mapping[str, Acquisition]) -> list[Label]:
    """Read and check a labels file against the acquisitions it labels (LabelError on a problem).

    The file is read streaming and bounded: a regular file of at most MAX_LABELS_BYTES bytes and
    MAX_LABEL_ROWS rows."""
    path = Path(path)
    rows = _rows(path)
    first = next(rows, None)
    names = _header(first[1] if first else None, path)
    labels: list[Label] = []
    annotators: dict[str, str] = {}  # one string per name, not per row
    seen: dict[tuple[str, int, int, int], list[Label]] = {}  # 1 px grid cells of each field
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        where = f"{path}:{line}"
        if len(row) != len(names):
            raise LabelError(f"{where}: {len(row)} values for {len(names)} columns")
        values = {n: v.strip() for n, v in zip(names, row, strict=True)}
        sample, fov, x, y, cell_class = _parse_row(values, where, acquisitions)
        annotator = annotators.setdefault(values.get("annotator", ""), values.get("annotator", ""))
        label = Label(sample, fov, x, y, cell_class, annotator, line)
        gx, gy = int(x // DUPLICATE_PX), int(y // DUPLICATE_PX)
        for dx, dy in itertools.product((-1, 0, 1), repeat=2):
            for other in seen.get((sample, fov, gx + dx, gy + dy), ()):
                if math.dist((x, y), (other.x_px, other.y_px)) < DUPLICATE_PX:
                    raise LabelError(
                        f"{where}: duplicate of line {other.line} (same cell of sample "
                        f"{sample!r} field {fov})"
                    )
        seen.setdefault((sample, fov, gx, gy), []).append(label)
        labels.append(label)
    if not labels:
        raise LabelError(f"{path}: no labels (only a header)")
    return labels
