"""What `train` records of its data (provenance `training_data`): digest of the index files,
cells, class counts, simulated or real, and how a checkpoint's provenance is read back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from leukoscope.classifier.checkpoint import read_checkpoint
from leukoscope.classifier.data import load_dataset
from leukoscope.classifier.progress import TrainProgress
from leukoscope.classifier.recipe import TrainConfig
from leukoscope.classifier.train import TrainingRun
from leukoscope.classifier.training_data import trained_on
from tests.unit.test_data import write_cells


def test_a_simulated_dataset_is_recorded_as_such(tmp_path: Path) -> None:
    root = write_cells(tmp_path / "data")
    index = json.dumps({"generator": "leukoscope simulate dataset", "seed": 1})
    (root / "dataset.json").write_text(index)
    dataset = load_dataset(root, 16)
    config = TrainConfig(folds=2, epochs=1, input_size=16, batch_size=4)
    run = TrainingRun(
        dataset, config, tmp_path / "run", torch.device("cpu"), TrainProgress(None, quiet=True)
    )
    run.parts(["0"])
    _, meta = read_checkpoint(tmp_path / "run" / "fold_0" / "model.pt")
    entry = meta.provenance["training_data"]
    expected = hashlib.sha256(b"dataset.json\0" + index.encode() + b"\0").hexdigest()
    assert entry["digest"] == expected and entry["digest_of"] == "dataset.json"
    assert entry["simulated"] is True and entry["source"] == "simulate dataset"
    assert entry["cells"] == len(dataset.labels)
    assert entry["class_counts"] == dataset.class_counts()
    assert trained_on(meta.provenance).describe() == f"simulated, {len(dataset.labels)} cells"


def test_built_unknown_and_unrecorded_datasets(tmp_path: Path) -> None:
    from leukoscope.classifier.training_data import training_data

    root = write_cells(tmp_path / "data")
    plain = training_data(root, [0, 1], ["a", "b"])
    assert plain["simulated"] is None and plain["digest_of"] == "image list"
    (root / "build.json").write_text(json.dumps({"simulated": False}))
    (root / "manifest.csv").write_text("cell_id,class\n")
    built = training_data(root, [0, 1], ["a", "b"])
    assert built["simulated"] is False and built["digest_of"] == "build.json+manifest.csv"
    assert trained_on({"training_data": built}).real
    assert not trained_on({"dataset_cells": 10}).real  # nothing said of the data: not real
    assert "counts as simulator-only" in trained_on({"dataset_cells": 10}).describe()
