"""What a model was trained on: the `training_data` entry `train` writes into a checkpoint's
provenance, and how a checkpoint's provenance is read back.

A dataset is identified by the SHA-256 of its index files (`dataset.json` of `simulate dataset`;
`build.json` + `manifest.csv` of `dataset build`), or, for a folder with none, of its sorted list
of images. It is simulated when `simulate dataset` wrote it, or when `dataset build` cut it from
simulated acquisitions; real when `dataset build` cut it from acquisitions of a rig. Anything else
is unknown, and a model trained on unknown data counts as simulator-only: never as validated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leukoscope.types import CELL_CLASSES, CellClass

INDEX_FILES = ("build.json", "dataset.json", "manifest.csv")
"""A dataset's index files, hashed in this order when present (`dataset build` writes build.json
and manifest.csv, `simulate dataset` writes dataset.json)."""
SIMULATOR_GENERATOR = "leukoscope simulate dataset"
"""The `generator` of a simulated dataset's dataset.json."""


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def dataset_digest(root: Path, images: list[str]) -> tuple[str, str]:
    """SHA-256 hex of the dataset's index files (or of its image list `images`), and what it
    covers ("build.json+manifest.csv", ..., or "image list")."""
    root = Path(root)
    digest = hashlib.sha256()
    files = [name for name in INDEX_FILES if (root / name).is_file()]
    for name in files:
        digest.update(name.encode("utf-8") + b"\0")
        digest.update((root / name).read_bytes())
        digest.update(b"\0")
    if files:
        return digest.hexdigest(), "+".join(files)
    for image in sorted(images):
        digest.update(image.encode("utf-8") + b"\n")
    return digest.hexdigest(), "image list"


def dataset_origin(root: Path) -> tuple[bool | None, str]:
    """(simulated: True / False / None for unknown, source) of a dataset folder."""
    root = Path(root)
    info = _json(root / "dataset.json")
    if info.get("generator") == SIMULATOR_GENERATOR:
        return True, "simulate dataset"
    if (root / "build.json").is_file():
        simulated = _json(root / "build.json").get("simulated")
        return (simulated if isinstance(simulated, bool) else None), "dataset build"
    return None, "unknown"


def training_data(
    root: Path,
    labels: list[int],
    cell_ids: list[str],
    classes: Sequence[CellClass] = CELL_CLASSES,
) -> dict[str, Any]:
    """The provenance entry of a training set (labels index `classes`): digest, cells, class
    counts, simulated, source."""
    names = [c.value for c in classes]
    counts = {name: 0 for name in names}
    for label in labels:
        counts[names[label]] += 1
    images = [f"{names[label]}/{cell}" for label, cell in zip(labels, cell_ids, strict=True)]
    digest, covers = dataset_digest(root, images)
    simulated, source = dataset_origin(root)
    return {
        "digest": digest,
        "digest_of": covers,
        "cells": len(labels),
        "class_counts": counts,
        "simulated": simulated,
        "source": source,
    }


@dataclass(frozen=True)
class TrainedOn:
    """What a checkpoint's provenance says of its training data."""

    simulated: bool | None  # None: the provenance does not say
    cells: int | None
    digest: str = ""
    source: str = ""

    @property
    def real(self) -> bool:
        """Trained on cells of real acquisitions (recorded as such)."""
        return self.simulated is False

    def describe(self) -> str:
        """E.g. "real acquisitions, 412 cells", "simulated, 6697 cells", "unknown data"."""
        cells = f", {self.cells} cells" if self.cells is not None else ""
        if self.simulated is None:
            return f"unknown data{cells} (counts as simulator-only)"
        return ("simulated" if self.simulated else "real acquisitions") + cells


def trained_on(provenance: Mapping[str, Any]) -> TrainedOn:
    """Read the `training_data` entry of a checkpoint's provenance (absent: unknown data)."""
    entry = provenance.get("training_data")
    if not isinstance(entry, Mapping):
        cells = provenance.get("dataset_cells")
        return TrainedOn(None, cells if isinstance(cells, int) else None)
    simulated = entry.get("simulated")
    cells = entry.get("cells")
    return TrainedOn(
        simulated if isinstance(simulated, bool) else None,
        cells if isinstance(cells, int) else None,
        str(entry.get("digest", "")),
        str(entry.get("source", "")),
    )
