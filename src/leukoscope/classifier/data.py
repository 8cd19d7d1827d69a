"""Training data: the dataset layout, in-memory loading and normalisation (batches.py: augmentation,
class balance and MIMO sampling).

Layout (../docs/training.md): ``root/<modality>/<CLASS>/<cell_id>.png``, the same relative paths in
every modality folder. The whole dataset is read once into one integer array (cells, modalities,
channels, size, size) at the model's input size; augmentation then runs in torch on whole batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from leukoscope.errors import DatasetError
from leukoscope.imaging import resize_square
from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES, MODALITIES, CellClass, Modality

IMAGE_SUFFIX = ".png"
MIMO_ARCHS = frozenset({"mm_mimo", "hs_mm_mimo"})
"""Architectures trained with independent per-modality inputs (one head per modality)."""


@dataclass(frozen=True)
class CellDataset:
    """Every cell of a dataset in memory, resized to one input size.

    `images` is (cells, modalities, channels, size, size), uint8 or uint16 (8-bit files are scaled
    to 16 bits when another file of the dataset is 16-bit); `labels` index `classes`: the five,
    then the extra classes (`EXTRA_CLASSES`) the dataset has folders for.
    """

    root: Path
    modalities: tuple[Modality, ...]
    images: np.ndarray
    labels: np.ndarray
    cell_ids: tuple[str, ...]
    classes: tuple[CellClass, ...] = CELL_CLASSES

    @property
    def in_chans(self) -> int:
        """Channels per modality (1 mono, 3 RGB)."""
        return int(self.images.shape[2])

    @property
    def input_size(self) -> int:
        """Side of every stored image, pixels."""
        return int(self.images.shape[-1])

    @property
    def max_value(self) -> float:
        """Full scale of the integer storage (255 or 65535)."""
        return float(np.iinfo(self.images.dtype).max)

    def class_counts(self) -> dict[str, int]:
        """Cells per class, every class listed."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {c.value: int(n) for c, n in zip(self.classes, counts, strict=True)}

    def select_modalities(self, modalities: Sequence[Modality]) -> CellDataset:
        """A view holding only `modalities` (which must all be loaded)."""
        missing = [m.value for m in modalities if m not in self.modalities]
        if missing:
            raise DatasetError(f"{self.root}: modality {', '.join(missing)} not loaded")
        positions = [self.modalities.index(m) for m in modalities]
        return CellDataset(
            self.root,
            tuple(modalities),
            self.images[:, positions],
            self.labels,
            self.cell_ids,
            self.classes,
        )


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _modality_folders(root: Path, modalities: Sequence[Modality] | None) -> list[Modality]:
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    known = {m.value for m in MODALITIES}
    present: set[Modality] = set()
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or _is_hidden(entry):
            continue
        if entry.name not in known:
            raise DatasetError(
                f"{entry}: unknown modality folder; expected {', '.join(sorted(known))}"
            )
        present.add(Modality(entry.name))
    if modalities is None:
        if not present:
            raise DatasetError(f"{root}: no modality folder ({', '.join(sorted(known))})")
        return [m for m in MODALITIES if m in present]
    missing = [m.value for m in modalities if m not in present]
    if missing:
        raise DatasetError(f"{root}: modality folder {', '.join(missing)} not found")
    return [m for m in MODALITIES if m in modalities]


def dataset_classes(
    root: Path, modalities: Sequence[Modality] | None = None
) -> tuple[CellClass, ...]:
    """The classes a dataset's labels name: the five, then each extra class (`EXTRA_CLASSES`, in
    that order) that has a folder in some modality folder (a lab's further labels)."""
    root = Path(root)
    folders = {
        entry.name
        for modality in _modality_folders(root, modalities)
        for entry in (root / modality.value).iterdir()
        if entry.is_dir() and not _is_hidden(entry)
    }
    return (*CELL_CLASSES, *(c for c in EXTRA_CLASSES if c.value in folders))


def _scan_modality(folder: Path, known: Sequence[CellClass]) -> dict[str, int]:
    """Map `CLASS/cell_id.png` -> index in `known` for one modality folder; check its layout."""
    classes = {c.value: i for i, c in enumerate(known)}
    cells: dict[str, int] = {}
    seen_ids: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if _is_hidden(entry):
            continue
        if not entry.is_dir():
            raise DatasetError(f"{entry}: unexpected file; a modality folder holds class folders")
        if entry.name not in classes:
            raise DatasetError(
                f"{entry}: unknown class folder; expected {', '.join(c.value for c in known)}"
            )
        for image in sorted(entry.iterdir()):
            if _is_hidden(image):
                continue
            if image.suffix.lower() != IMAGE_SUFFIX or not image.is_file():
                raise DatasetError(f"{image}: unexpected entry; class folders hold .png images")
            if image.stem in seen_ids:
                raise DatasetError(
                    f"{image}: cell id {image.stem!r} also in {seen_ids[image.stem]}"
                )
            seen_ids[image.stem] = image
            cells[f"{entry.name}/{image.name}"] = classes[entry.name]
    if not cells:
        raise DatasetError(f"{folder}: empty modality folder (no .png cells)")
    return cells


def scan_dataset(
    root: Path,
    modalities: Sequence[Modality] | None = None,
    classes: Sequence[CellClass] | None = None,
) -> tuple[tuple[Modality, ...], list[str], np.ndarray]:
    """Check the layout and list the cells: (modalities, relative paths, indices in `classes`).

    `classes` defaults to `dataset_classes` (a model's classes when it is evaluated: a folder of
    another class is refused, and its extra classes may have no cells). Every modality must hold
    the same cells, and each of the five classes must have at least one cell.
    """
    root = Path(root)
    chosen = _modality_folders(root, modalities)
    known = tuple(classes) if classes is not None else dataset_classes(root, chosen)
    scans = {m: _scan_modality(root / m.value, known) for m in chosen}
    reference = scans[chosen[0]]
    for modality in chosen[1:]:
        other = scans[modality]
        for rel in sorted(reference.keys() - other.keys()):
            raise DatasetError(
                f"{root / modality.value / rel}: missing; cell {rel} is in "
                f"{chosen[0].value} but not in {modality.value}"
            )
        for rel in sorted(other.keys() - reference.keys()):
            raise DatasetError(
                f"{root / modality.value / rel}: cell {rel} is in {modality.value} "
                f"but not in {chosen[0].value}"
            )
    relative = sorted(reference)
    labels = np.array([reference[r] for r in relative], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(known))
    required = known if classes is None else CELL_CLASSES  # a model's extra class may be absent
    empty = [c.value for c, n in zip(known, counts, strict=True) if n == 0 and c in required]
    if empty:
        raise DatasetError(
            f"{root}: class {', '.join(empty)} has no cells (missing class folder in "
            f"{root / chosen[0].value})"
        )
    return tuple(chosen), relative, labels


MAX_IMAGE_SIDE = 4096
"""Largest side of a training image, px (a cell crop is ~100-400 px; the bound stops a hostile or
mistaken file from allocating gigabytes before anything is checked)."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, None when the bytes are not a PNG."""
    head = data[:24].tobytes()
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def read_image(path: Path) -> np.ndarray:
    """Read one PNG as (channels, H, W) uint8/uint16, RGB order; a clear error when unreadable or
    larger than MAX_IMAGE_SIDE (checked in the header, before decoding)."""
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    size = _png_size(data) if data is not None else None
    if size is not None and max(size) > MAX_IMAGE_SIDE:
        raise DatasetError(
            f"{path}: {size[0]} x {size[1]} px is larger than a cell crop "
            f"(at most {MAX_IMAGE_SIDE} px a side)"
        )
    image = None if data is None or data.size == 0 else cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{path}: unreadable or corrupt PNG")
    if image.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"{path}: unsupported pixel type {image.dtype} (8- or 16-bit only)")
    if image.ndim == 2:
        return image[None]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(rgb.transpose(2, 0, 1))
    raise DatasetError(f"{path}: unsupported image shape {image.shape}")


NATIVE_SIZE_RANGE = (32, 224)
"""Bounds of the default input size: the crops' own side, but never below 32 px (the network
downsamples 32x) nor above 224 px (the paper's input)."""


def native_input_size(
    root: Path, modalities: Sequence[Modality] | None = None, *, sample: int = 256
) -> int:
    """The crops' own side (median of up to `sample` images, read from their headers), bounded by
    NATIVE_SIZE_RANGE: the default input size, so a cell is not resampled (docs/results.md, "Input
    size": resampling loses the texture that tells the classes apart)."""
    chosen, relative, _ = scan_dataset(Path(root), modalities)
    step = max(1, len(relative) // sample)
    sides = []
    for rel in relative[::step][:sample]:
        path = Path(root) / chosen[0].value / rel
        size = _png_size(np.fromfile(path, dtype=np.uint8, count=24))
        sides.append(max(size) if size is not None else max(read_image(path).shape[1:]))
    low, high = NATIVE_SIZE_RANGE
    return int(min(high, max(low, int(np.median(sides)))))


def _load_resized(path: Path, size: int) -> np.ndarray:
    chw = read_image(path)
    return np.stack([resize_square(channel, size) for channel in chw])


def load_dataset(
    root: Path,
    input_size: int,
    modalities: Sequence[Modality] | None = None,
    *,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> CellDataset:
    """Read the whole dataset into memory at `input_size` (layout checked first)."""
    if input_size < 8:
        raise DatasetError(f"input size {input_size} is too small (8 pixels at least)")
    root = Path(root)
    chosen, relative, labels = scan_dataset(root, modalities)  # labels index dataset_classes
    loaded = load_cells(root, input_size, chosen, relative, labels, workers, progress)
    return replace(loaded, classes=dataset_classes(root, chosen))


def load_cells(
    root: Path,
    input_size: int,
    chosen: tuple[Modality, ...],
    relative: Sequence[str],
    labels: np.ndarray,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> CellDataset:
    """Read the cells `relative` (paths under each modality folder, from `scan_dataset`) into
    memory at `input_size`: all of a dataset, or one part of it at a time (`evaluate`)."""
    paths = [root / m.value / rel for rel in relative for m in chosen]
    images: list[np.ndarray] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, image in enumerate(pool.map(lambda p: _load_resized(p, input_size), paths)):
            images.append(image)
            if progress is not None and (done + 1) % 256 == 0:
                progress(done + 1, len(paths))
    if progress is not None:
        progress(len(paths), len(paths))
    channels = max(image.shape[0] for image in images)
    wide = any(image.dtype == np.uint16 for image in images)
    dtype = np.uint16 if wide else np.uint8
    array = np.empty((len(relative), len(chosen), channels, input_size, input_size), dtype=dtype)
    for flat, image in enumerate(images):
        cell, modality = divmod(flat, len(chosen))
        if wide and image.dtype == np.uint8:
            image = image.astype(np.uint16) * 257
        array[cell, modality] = image  # a mono image broadcasts to every channel
    cell_ids = tuple(Path(rel).stem for rel in relative)
    return CellDataset(root, chosen, array, labels, cell_ids)


def norm_stats(dataset: CellDataset, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per modality and channel, in [0, 1] units, over the cells `indices` only."""
    chosen = dataset.images[np.asarray(indices)]
    values = chosen.astype(np.float64) / dataset.max_value
    mean = values.mean(axis=(0, 3, 4))
    std = np.maximum(values.std(axis=(0, 3, 4)), 1e-3)
    return mean.astype(np.float32), std.astype(np.float32)
