"""Training data: the dataset layout, in-memory loading, normalisation, augmentation, MIMO sampling.

Layout (../docs/training.md): ``root/<modality>/<CLASS>/<cell_id>.png``, the same relative paths in
every modality folder. The whole dataset is read once into one integer array (cells, modalities,
channels, size, size) at the model's input size; augmentation then runs in torch on whole batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from leukoscope.errors import DatasetError
from leukoscope.imaging import resize_square
from leukoscope.types import CELL_CLASSES, MODALITIES, Modality

IMAGE_SUFFIX = ".png"
MIMO_ARCHS = frozenset({"mm_mimo", "hs_mm_mimo"})
"""Architectures trained with independent per-modality inputs (one head per modality)."""


@dataclass(frozen=True)
class CellDataset:
    """Every cell of a dataset in memory, resized to one input size.

    `images` is (cells, modalities, channels, size, size), uint8 or uint16 (8-bit files are scaled
    to 16 bits when another file of the dataset is 16-bit); `labels` index `CELL_CLASSES`.
    """

    root: Path
    modalities: tuple[Modality, ...]
    images: np.ndarray
    labels: np.ndarray
    cell_ids: tuple[str, ...]

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
        counts = np.bincount(self.labels, minlength=len(CELL_CLASSES))
        return {c.value: int(n) for c, n in zip(CELL_CLASSES, counts, strict=True)}

    def select_modalities(self, modalities: Sequence[Modality]) -> CellDataset:
        """A view holding only `modalities` (which must all be loaded)."""
        missing = [m.value for m in modalities if m not in self.modalities]
        if missing:
            raise DatasetError(f"{self.root}: modality {', '.join(missing)} not loaded")
        positions = [self.modalities.index(m) for m in modalities]
        return CellDataset(
            self.root, tuple(modalities), self.images[:, positions], self.labels, self.cell_ids
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


def _scan_modality(folder: Path) -> dict[str, int]:
    """Map `CLASS/cell_id.png` -> class index for one modality folder; check its layout."""
    classes = {c.value: i for i, c in enumerate(CELL_CLASSES)}
    cells: dict[str, int] = {}
    seen_ids: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if _is_hidden(entry):
            continue
        if not entry.is_dir():
            raise DatasetError(f"{entry}: unexpected file; a modality folder holds class folders")
        if entry.name not in classes:
            raise DatasetError(
                f"{entry}: unknown class folder; expected {', '.join(c.value for c in CELL_CLASSES)}"
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
    root: Path, modalities: Sequence[Modality] | None = None
) -> tuple[tuple[Modality, ...], list[str], np.ndarray]:
    """Check the layout and list the cells: (modalities, relative paths, class indices).

    Every modality must hold the same cells, and every class must have at least one cell.
    """
    root = Path(root)
    chosen = _modality_folders(root, modalities)
    scans = {m: _scan_modality(root / m.value) for m in chosen}
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
    counts = np.bincount(labels, minlength=len(CELL_CLASSES))
    empty = [c.value for c, n in zip(CELL_CLASSES, counts, strict=True) if n == 0]
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
    chosen, relative, labels = scan_dataset(root, modalities)
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


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation. The default is the one that holds on real cells (docs/results.md,
    "Training recipe"): one of the 8 flips/90-degree rotations per cell, nothing else. Scale, shift,
    contrast and gain jitter are options (0 = off); on real cells they cost accuracy."""

    scale: float = 0.0
    shift: float = 0.0
    contrast: float = 0.0
    gain: float = 0.0

    @property
    def resamples(self) -> bool:
        """Whether the geometric part interpolates (scale or shift), not only permutes pixels."""
        return self.scale > 0 or self.shift > 0

    @property
    def photometric(self) -> bool:
        """Whether intensities are changed at all."""
        return self.contrast > 0 or self.gain > 0


def _uniform(n: int, spread: float, generator: torch.Generator) -> torch.Tensor:
    return 1.0 + (torch.rand(n, generator=generator) * 2.0 - 1.0) * spread


def dihedral_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One of the 8 flips/90-degree rotations per example, the same for all its modalities.

    Exact (a permutation of pixels, no interpolation); `x` is (B, M, C, H, W) with H == W.
    """
    batch = x.shape[0]
    quarter = torch.randint(0, 4, (batch,), generator=generator)
    flip = torch.rand(batch, generator=generator) < 0.5
    out = torch.empty_like(x)
    for k in range(4):
        for flipped in (False, True):
            chosen = ((quarter == k) & (flip == flipped)).nonzero().flatten().to(x.device)
            if chosen.numel() == 0:
                continue
            part = x.index_select(0, chosen)
            if flipped:
                part = part.flip(-1)
            out.index_copy_(0, chosen, part.rot90(k, dims=(-2, -1)))
    return out


def geometric_augment(
    x: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """One random flip/rotation (and, when configured, scale/shift) per example, the same for all
    its modalities. Without scale and shift it is exact (`dihedral_augment`); with them, one
    grid_sample (bilinear, reflection at the borders) does it all.
    """
    if not config.resamples:
        return dihedral_augment(x, generator)
    batch, modalities, channels, height, width = x.shape
    quarter = torch.randint(0, 4, (batch,), generator=generator).float() * (torch.pi / 2)
    flip = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    scale = _uniform(batch, config.scale, generator)
    cos, sin = torch.cos(quarter).round(), torch.sin(quarter).round()
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = cos * flip / scale
    theta[:, 0, 1] = -sin / scale
    theta[:, 1, 0] = sin * flip / scale
    theta[:, 1, 1] = cos / scale
    theta[:, :, 2] = (torch.rand(batch, 2, generator=generator) * 2 - 1) * config.shift * 2
    theta = theta.to(x.device)
    flat = x.reshape(batch, modalities * channels, height, width)
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.reshape(x.shape)


def photometric_augment(
    x: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Contrast about the image mean and a brightness gain, drawn per example and modality."""
    batch, modalities = x.shape[:2]
    shape = (batch, modalities, 1, 1, 1)
    contrast = _uniform(batch * modalities, config.contrast, generator).reshape(shape)
    gain = _uniform(batch * modalities, config.gain, generator).reshape(shape)
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    out = ((x - mean) * contrast.to(x.device) + mean) * gain.to(x.device)
    return out.clamp_(0.0, 1.0)


class BatchPreparer:
    """Turns integer image batches into normalised float tensors (with augmentation in training)."""

    def __init__(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        max_value: float,
        device: torch.device,
        augment: AugmentConfig | None = None,
    ) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=device)[
            None, :, :, None, None
        ]
        self.std = torch.as_tensor(std, dtype=torch.float32, device=device)[None, :, :, None, None]
        self.max_value = max_value
        self.device = device
        self.augment = augment

    def __call__(
        self, images: np.ndarray, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, M, C, H, W) integers -> normalised float32 on the device."""
        x = torch.from_numpy(images.astype(np.float32)).to(self.device) / self.max_value
        if self.augment is not None:
            if generator is None:
                raise ValueError("augmentation needs a generator")
            x = geometric_augment(x, self.augment, generator)
            if self.augment.photometric:
                x = photometric_augment(x, self.augment, generator)
        return (x - self.mean) / self.std


def class_weights(labels: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Sampling weight per example: class count ** -power (1 = fully class-balanced, 0 = none)."""
    counts = np.bincount(labels, minlength=len(CELL_CLASSES)).astype(np.float64)
    per_class = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    weights = per_class[labels]
    return weights / weights.sum()


def balanced_batches(
    indices: np.ndarray,
    labels: np.ndarray,
    loaded_batch: int,
    steps: int,
    generator: torch.Generator,
    power: float = 1.0,
) -> torch.Tensor:
    """`steps` batches of `loaded_batch` dataset indices drawn with class-balancing weights."""
    weights = torch.as_tensor(class_weights(labels[indices], power))
    draws = torch.multinomial(weights, steps * loaded_batch, replacement=True, generator=generator)
    return torch.as_tensor(indices)[draws].reshape(steps, loaded_batch)


def mimo_indices(
    loaded: torch.Tensor,
    heads: int,
    rho: float,
    repetitions: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Per-head example indices for one MIMO step, as in Havasi et al. 2020 (edward2's MIMO).

    The loaded batch is tiled `repetitions` times and shuffled; the first (1 - rho) of it is
    shuffled again independently for every head (independent examples per head), the remaining
    rho fraction is the same for all heads (input repetition). Returns (heads, len(loaded) * R).
    """
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho}")
    if repetitions < 1:
        raise ValueError(f"batch repetition must be >= 1, got {repetitions}")
    tiled = loaded.repeat(repetitions)
    main = tiled[torch.randperm(tiled.numel(), generator=generator)]
    independent = int(main.numel() * (1.0 - rho))
    rows = []
    for _ in range(heads):
        row = main.clone()
        row[:independent] = main[:independent][torch.randperm(independent, generator=generator)]
        rows.append(row)
    return torch.stack(rows)


def gather_mimo_batch(
    dataset: CellDataset, per_head: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Images (B, M, C, H, W) where modality m comes from cell per_head[m], and labels (B, M)."""
    index = per_head.numpy()
    heads = index.shape[0]
    if heads != len(dataset.modalities):
        raise ValueError(f"{heads} heads for {len(dataset.modalities)} modalities")
    images = np.stack([dataset.images[index[m], m] for m in range(heads)], axis=1)
    labels = np.stack([dataset.labels[index[m]] for m in range(heads)], axis=1)
    return images, labels
