"""A checkpoint cannot ask for an absurd input size or carry non-finite numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from leukoscope.classifier.checkpoint import (
    FORMAT_TAG,
    MAX_INPUT_SIZE,
    ModelMeta,
    read_checkpoint,
    save_checkpoint,
)
from leukoscope.errors import CheckpointError
from leukoscope.types import Modality

MODS = (Modality.COLOR1, Modality.FLUORESCENCE)


def meta(**fields: object) -> ModelMeta:
    values: dict[str, object] = {"options": {"width": 0.5}, "input_size": 32}
    values.update(fields)
    return ModelMeta.default("single", MODS[:1], 1, **values)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    m = meta()
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, m.build().eval(), m)
    return path


def tampered(saved: Path, tmp_path: Path, *, meta_changes: dict[str, object] | None = None,
             poison: bool = False) -> Path:  # fmt: skip
    payload = torch.load(saved, map_location="cpu", weights_only=True)
    assert payload["format"] == FORMAT_TAG
    raw = json.loads(payload["meta"])
    raw.update(meta_changes or {})
    payload["meta"] = json.dumps(raw)
    if poison:
        name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
        payload["state_dict"][name].view(-1)[0] = float("nan")
    path = tmp_path / "tampered.pt"
    torch.save(payload, path)
    return path


def test_the_untampered_checkpoint_reads(saved: Path) -> None:
    assert read_checkpoint(saved)[1].input_size == 32


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"input_size": 100_000}, "input_size"),
        ({"norm_mean": [["NaN"]]}, "norm_mean"),
        ({"class_weights": [1.0, 1.0, "Infinity", 1.0, 1.0]}, "class_weights"),
    ],
)
def test_absurd_or_non_finite_metadata_is_refused(
    saved: Path, tmp_path: Path, changes: dict[str, object], problem: str
) -> None:
    with pytest.raises(CheckpointError, match=problem):
        read_checkpoint(tampered(saved, tmp_path, meta_changes=changes))
    assert MAX_INPUT_SIZE < 100_000


def test_nan_weights_are_refused(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not finite"):
        read_checkpoint(tampered(saved, tmp_path, poison=True))


def test_a_corrupted_weight_byte_is_caught_by_the_content_digest(
    saved: Path, tmp_path: Path
) -> None:
    payload = torch.load(saved, map_location="cpu", weights_only=True)
    assert len(payload["digest"]) == 64
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name].view(-1)[0] += 0.5  # finite, plausible, wrong
    path = tmp_path / "flipped.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="content digest"):
        read_checkpoint(path)


def test_the_shipped_model_carries_its_digest_and_4_kb_of_garbage_is_refused(
    tmp_path: Path,
) -> None:
    import random

    from leukoscope.classifier.shipped import resolve_model_path

    shipped = resolve_model_path(None)
    assert len(torch.load(shipped, map_location="cpu", weights_only=True)["digest"]) == 64
    data = bytearray(shipped.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = random.Random(15).randbytes(4096)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        read_checkpoint(damaged)
