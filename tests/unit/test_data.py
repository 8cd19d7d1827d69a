"""The dataset layout reader: loading, bit depths, colour, and a clear error for each broken layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from leukoscope.classifier.batches import (
    AugmentConfig,
    BatchPreparer,
    geometric_augment,
    photometric_augment,
)
from leukoscope.classifier.data import (
    load_dataset,
    native_input_size,
    norm_stats,
    read_image,
    scan_dataset,
)
from leukoscope.errors import DatasetError
from leukoscope.types import CELL_CLASSES, MODALITIES, Modality

PER_CLASS = 2


def write_cells(
    root: Path,
    modalities: tuple[Modality, ...] = MODALITIES,
    classes: tuple[str, ...] = tuple(c.value for c in CELL_CLASSES),
    dtype: type = np.uint8,
    rgb: bool = False,
    size: int = 20,
) -> Path:
    """A tiny dataset: PER_CLASS cells per class, a class-dependent brightness."""
    top = np.iinfo(dtype).max
    for m, modality in enumerate(modalities):
        for c, name in enumerate(classes):
            folder = root / modality.value / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(PER_CLASS):
                value = top * (c + 1) // (len(classes) + 2) + m
                shape = (size, size, 3) if rgb else (size, size)
                image = np.full(shape, value, dtype=dtype)
                image[0, 0] = i
                cv2.imwrite(str(folder / f"{name.lower()}_{i:03d}.png"), image)
    return root


def test_loads_every_cell_in_memory_at_the_input_size(tmp_path: Path) -> None:
    dataset = load_dataset(write_cells(tmp_path), 16)
    assert dataset.images.shape == (5 * PER_CLASS, 4, 1, 16, 16)
    assert dataset.images.dtype == np.uint8
    assert dataset.modalities == MODALITIES
    assert dataset.class_counts() == {c.value: PER_CLASS for c in CELL_CLASSES}
    assert sorted(set(dataset.labels.tolist())) == [0, 1, 2, 3, 4]
    # Brightness follows the class, as written.
    assert dataset.images[dataset.labels == 4].mean() > dataset.images[dataset.labels == 0].mean()


@pytest.mark.parametrize(("side", "expected"), [(96, 96), (128, 128), (20, 32), (300, 224)])
def test_the_default_input_size_is_the_crops_own_side_within_bounds(
    tmp_path: Path, side: int, expected: int
) -> None:
    assert native_input_size(write_cells(tmp_path, size=side)) == expected


def test_a_subset_of_modalities_and_16_bit_rgb(tmp_path: Path) -> None:
    chosen = (Modality.COLOR2, Modality.FLUORESCENCE)
    dataset = load_dataset(write_cells(tmp_path, chosen, dtype=np.uint16, rgb=True), 12)
    assert dataset.modalities == chosen
    assert dataset.images.shape == (5 * PER_CLASS, 2, 3, 12, 12)
    assert dataset.images.dtype == np.uint16 and dataset.max_value == 65535.0
    assert dataset.select_modalities([Modality.FLUORESCENCE]).images.shape[1] == 1


def test_reads_rgb_in_rgb_order(tmp_path: Path) -> None:
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[..., 0] = 200  # blue in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "x.png"), image)
    assert read_image(tmp_path / "x.png")[:, 0, 0].tolist() == [0, 0, 200]


def test_asks_only_for_the_requested_modalities(tmp_path: Path) -> None:
    write_cells(tmp_path)
    chosen, relative, labels = scan_dataset(tmp_path, [Modality.COLOR1])
    assert chosen == (Modality.COLOR1,)
    assert len(relative) == len(labels) == 5 * PER_CLASS


def test_norm_stats_use_only_the_given_cells(tmp_path: Path) -> None:
    dataset = load_dataset(write_cells(tmp_path), 8)
    dark = np.flatnonzero(dataset.labels == 0)
    bright = np.flatnonzero(dataset.labels == 4)
    mean_dark, std_dark = norm_stats(dataset, dark)
    mean_bright, _ = norm_stats(dataset, bright)
    assert mean_dark.shape == std_dark.shape == (4, 1)
    assert (mean_bright > mean_dark).all()
    assert (std_dark > 0).all()


def test_preparer_normalises_and_augments(tmp_path: Path) -> None:
    dataset = load_dataset(write_cells(tmp_path), 16)
    index = np.arange(len(dataset.labels))
    mean, std = norm_stats(dataset, index)
    plain = BatchPreparer(mean, std, dataset.max_value, torch.device("cpu"))
    x = plain(dataset.images)
    assert x.shape == (10, 4, 1, 16, 16) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.2
    noisy = BatchPreparer(mean, std, dataset.max_value, torch.device("cpu"), AugmentConfig())
    y = noisy(dataset.images, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(x, y)


def test_geometric_augmentation_keeps_modalities_registered() -> None:
    x = torch.rand(6, 4, 1, 16, 16)
    x[:, 1:] = x[:, :1]  # every modality holds the same image
    out = geometric_augment(x, AugmentConfig(), torch.Generator().manual_seed(3))
    assert torch.allclose(out[:, 0], out[:, 3])


def test_default_augmentation_is_an_exact_flip_or_rotation() -> None:
    x = torch.rand(64, 2, 1, 8, 8)
    out = geometric_augment(x, AugmentConfig(), torch.Generator().manual_seed(1))
    dihedral = [torch.rot90(x, k, dims=(3, 4)) for k in range(4)]
    dihedral += [torch.flip(d, dims=(4,)) for d in dihedral]
    used = set()
    for i in range(len(x)):
        matches = [j for j, d in enumerate(dihedral) if torch.equal(out[i], d[i])]
        assert matches, f"example {i} is not one of the 8 flips/rotations"
        used.add(matches[0])
    assert len(used) == 8  # every element of the group is drawn


def test_default_augmentation_leaves_intensities_alone(tmp_path: Path) -> None:
    dataset = load_dataset(write_cells(tmp_path), 16)
    mean, std = norm_stats(dataset, np.arange(len(dataset.labels)))
    cpu = torch.device("cpu")
    plain = BatchPreparer(mean, std, dataset.max_value, cpu)(dataset.images)
    augmented = BatchPreparer(mean, std, dataset.max_value, cpu, AugmentConfig())(
        dataset.images, torch.Generator().manual_seed(0)
    )
    # a permutation of each image's pixels: the same sorted values, per example and modality
    flat = plain.flatten(2).sort(dim=-1).values
    assert torch.equal(flat, augmented.flatten(2).sort(dim=-1).values)


def test_scale_shift_resample_and_jitter_changes_intensities() -> None:
    x = torch.rand(16, 2, 1, 12, 12)
    resampling = AugmentConfig(scale=0.1, shift=0.05)
    out = geometric_augment(x, resampling, torch.Generator().manual_seed(2))
    assert not torch.equal(out.flatten(1).sort().values, x.flatten(1).sort().values)
    jitter = AugmentConfig(contrast=0.15, gain=0.1)
    assert jitter.photometric and not jitter.resamples
    brighter = photometric_augment(x, jitter, torch.Generator().manual_seed(2))
    assert not torch.allclose(brighter, x)


# --- each broken layout gives a DatasetError naming the file or folder ----------------------------


def test_cell_missing_in_one_modality(tmp_path: Path) -> None:
    write_cells(tmp_path)
    victim = tmp_path / "color3" / "LYM" / "lym_001.png"
    victim.unlink()
    with pytest.raises(DatasetError, match=r"color3/LYM/lym_001\.png.*missing"):
        load_dataset(tmp_path, 8)


def test_extra_cell_in_one_modality(tmp_path: Path) -> None:
    write_cells(tmp_path)
    cv2.imwrite(str(tmp_path / "fluorescence" / "EOS" / "extra.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"fluorescence/EOS/extra\.png"):
        load_dataset(tmp_path, 8)


def test_unknown_class_folder(tmp_path: Path) -> None:
    write_cells(tmp_path)
    (tmp_path / "color1" / "BLASTS").mkdir()
    with pytest.raises(DatasetError, match=r"color1/BLASTS: unknown class folder"):
        load_dataset(tmp_path, 8)


def test_empty_extra_class_folder(tmp_path: Path) -> None:
    """A folder of a class beyond the five makes it one of the dataset's classes: it needs cells."""
    write_cells(tmp_path)
    (tmp_path / "color1" / "BLAST").mkdir()
    with pytest.raises(DatasetError, match="class BLAST has no cells"):
        load_dataset(tmp_path, 8)


def test_missing_class(tmp_path: Path) -> None:
    write_cells(tmp_path, classes=("NEU", "LYM", "MO", "EOS"))
    with pytest.raises(DatasetError, match="class BAS has no cells"):
        load_dataset(tmp_path, 8)


def test_empty_modality_folder(tmp_path: Path) -> None:
    write_cells(tmp_path, modalities=(Modality.COLOR1,))
    (tmp_path / "color2").mkdir()
    with pytest.raises(DatasetError, match=r"color2: empty modality folder"):
        load_dataset(tmp_path, 8)


def test_unknown_modality_folder(tmp_path: Path) -> None:
    write_cells(tmp_path, modalities=(Modality.COLOR1,))
    (tmp_path / "colour2").mkdir()
    with pytest.raises(DatasetError, match=r"colour2: unknown modality folder"):
        load_dataset(tmp_path, 8)


def test_requested_modality_absent(tmp_path: Path) -> None:
    write_cells(tmp_path, modalities=(Modality.COLOR1,))
    with pytest.raises(DatasetError, match="modality folder fluorescence not found"):
        load_dataset(tmp_path, 8, [Modality.FLUORESCENCE])


@pytest.mark.parametrize("content", [b"", b"not a png at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_corrupt_png(tmp_path: Path, content: bytes) -> None:
    write_cells(tmp_path)
    victim = tmp_path / "color2" / "MO" / "mo_000.png"
    victim.write_bytes(content)
    with pytest.raises(DatasetError, match=r"color2/MO/mo_000\.png: unreadable or corrupt PNG"):
        load_dataset(tmp_path, 8)


def test_truncated_png(tmp_path: Path) -> None:
    write_cells(tmp_path, size=64)
    victim = tmp_path / "color1" / "NEU" / "neu_001.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    cv2.imwrite(str(victim), noise)
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"neu_001\.png"):
        load_dataset(tmp_path, 8)


def test_stray_file_and_duplicate_id(tmp_path: Path) -> None:
    write_cells(tmp_path)
    (tmp_path / "color1" / "NEU" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"notes\.txt: unexpected entry"):
        load_dataset(tmp_path, 8)
    (tmp_path / "color1" / "NEU" / "notes.txt").unlink()
    source = tmp_path / "color1" / "NEU" / "neu_000.png"
    (tmp_path / "color1" / "LYM" / "neu_000.png").write_bytes(source.read_bytes())
    with pytest.raises(DatasetError, match="cell id 'neu_000'"):
        load_dataset(tmp_path, 8)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "nowhere", 8)


def test_an_oversized_png_is_refused_from_its_header(tmp_path: Path) -> None:
    import struct
    import zlib

    # a valid PNG header claiming 20000 x 20000 px (the pixel data need not exist to be refused)
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    chunk = (
        struct.pack(">I", len(ihdr))
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)
    with pytest.raises(DatasetError, match="20000 x 20000 px is larger than a cell crop"):
        read_image(path)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((40, 30), np.uint8))
    assert read_image(small).shape == (1, 40, 30)
