"""Synthetic training set: layout, exact counts, crops like the pipeline's, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from leukoscope.errors import ParameterError
from leukoscope.imaging import crop_side_px
from leukoscope.instrument.simulator.composition import parse_composition
from leukoscope.instrument.simulator.dataset import DATASET_FILE, generate_dataset
from leukoscope.types import CELL_CLASSES, MODALITIES

COMP = parse_composition("NEU=40,LYM=30,MO=10,EOS=10,BAS=10")


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return np.asarray(image)


def _files(root: Path, modality: str) -> list[str]:
    return sorted(str(p.relative_to(root / modality)) for p in (root / modality).rglob("*.png"))


def test_layout_counts_and_crops(tmp_path: Path) -> None:
    counts = generate_dataset(tmp_path / "ds", 20, composition=COMP, seed=3)
    root = tmp_path / "ds"
    assert [counts[c] for c in CELL_CLASSES] == [8, 6, 2, 2, 2]
    reference = _files(root, "color1")
    assert len(reference) == 20
    for modality in MODALITIES:
        assert _files(root, modality.value) == reference  # same relative paths everywhere
    for c in CELL_CLASSES:
        assert len(list((root / "color1" / c.value).glob("*.png"))) == counts[c]
    side = crop_side_px(0.25)
    image = _read(root / "fluorescence" / reference[0])
    assert image.shape == (side, side) and image.dtype == np.uint8
    # the cell is in the middle: fluorescence brighter in the centre than at the rim
    centre = image[side // 3 : 2 * side // 3, side // 3 : 2 * side // 3].mean()
    assert centre > 2 * np.concatenate([image[:8].ravel(), image[-8:].ravel()]).mean()
    info = json.loads((root / DATASET_FILE).read_text(encoding="utf-8"))
    assert info["counts"]["NEU"] == 8 and len(info["records"]) == 20


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        generate_dataset(tmp_path / name, 5, composition=COMP, seed=seed)
    a, b, c = (
        sorted(p.read_bytes() for p in (tmp_path / n / "color2").rglob("*.png")) for n in "abc"
    )
    assert len(a) == 5 and a == b
    assert not set(a) & set(c)


def test_sixteen_bit_option(tmp_path: Path) -> None:
    generate_dataset(tmp_path, 2, composition=COMP, seed=0, bit_depth=16, out_px=64)
    image = _read(next((tmp_path / "color1").rglob("*.png")))
    assert image.dtype == np.uint16 and image.shape == (64, 64) and image.max() > 4095


def test_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="bit depth"):
        generate_dataset(tmp_path, 2, bit_depth=12)
    with pytest.raises(ParameterError, match=">= 0"):
        generate_dataset(tmp_path, -5)
    with pytest.raises(ParameterError, match="crop size"):
        generate_dataset(tmp_path, 2, crop_um=0)
