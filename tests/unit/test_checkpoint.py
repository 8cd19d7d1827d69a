"""Checkpoints: round trip, refusals that name what differs, corrupt and truncated files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from leukoscope.classifier.checkpoint import (
    ModelMeta,
    file_digest,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from leukoscope.classifier.models import build_model
from leukoscope.errors import CheckpointError
from leukoscope.types import CELL_CLASSES, MODALITIES, CellClass, Modality

torch.set_num_threads(1)

MODS = (Modality.COLOR1, Modality.FLUORESCENCE)


def _meta(**fields: object) -> ModelMeta:
    values: dict[str, object] = {
        "options": {"width": 0.5, "hs_variant": "literal"},
        "input_size": 32,
        "norm_mean": [[0.5], [0.1]],
        "norm_std": [[0.25], [0.05]],
        "provenance": {"command": "test", "seed": 1},
        "metrics": {"accuracy": 0.9},
    }
    values.update(fields)
    return ModelMeta.default("hs_mm_mimo", MODS, 1, **values)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(3)
    meta = _meta()
    model = meta.build().eval()
    with torch.no_grad():  # non-trivial running statistics must survive the round trip
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, model, meta)
    return path, model


def test_round_trip_restores_weights_and_meta(saved: tuple[Path, torch.nn.Module]) -> None:
    path, model = saved
    loaded, meta = load_checkpoint(
        path, expect_arch="hs_mm_mimo", expect_modalities=MODS, expect_classes=CELL_CLASSES
    )
    assert meta == _meta()
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randn(2, 2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert list(path.parent.glob(".*.tmp")) == []  # atomic write left nothing behind


def test_file_loads_with_weights_only(saved: tuple[Path, torch.nn.Module]) -> None:
    payload = torch.load(saved[0], weights_only=True)
    assert payload["format"] == "leukoscope-checkpoint"
    assert isinstance(payload["meta"], str)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expect_arch": "mm_mimo"}, "architecture is 'hs_mm_mimo', expected 'mm_mimo'"),
        ({"expect_modalities": MODALITIES}, "modalities are ['color1', 'fluorescence']"),
        ({"expect_classes": (CellClass.NEU, CellClass.LYM)}, "classes are ['NEU'"),
    ],
)
def test_mismatch_is_refused_naming_the_difference(
    saved: tuple[Path, torch.nn.Module], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(CheckpointError, match="refused") as info:
        load_checkpoint(saved[0], **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_truncated_file_is_a_checkpoint_error(
    saved: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    data = saved[0].read_bytes()
    for cut in (10, len(data) // 2, len(data) - 100):
        broken = tmp_path / f"cut{cut}.pt"
        broken.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_checkpoint(broken)


def test_random_bytes_and_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_foreign_torch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save(build_model("single", MODS[:1], width=0.5).state_dict(), path)
    with pytest.raises(CheckpointError, match="not a leukoscope checkpoint"):
        read_checkpoint(path)


def test_weights_that_do_not_fit_the_meta_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "wrong.pt"
    other = build_model("mm_mimo", MODS, in_chans=1, width=0.5)
    save_checkpoint(path, other, _meta())  # meta says hs_mm_mimo
    with pytest.raises(CheckpointError, match="weights do not fit hs_mm_mimo"):
        load_checkpoint(path)


def test_invalid_meta_is_refused() -> None:
    with pytest.raises(ValueError, match="norm_mean must be 2 modalities x 1 channels"):
        _meta(norm_mean=[[0.5, 0.5], [0.1, 0.1]])
    with pytest.raises(ValueError, match="norm_std must be positive"):
        _meta(norm_std=[[0.0], [1.0]])


def test_overwrite_is_atomic_and_digest_changes(
    saved: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(path, saved[1], _meta())
    first = file_digest(path)
    save_checkpoint(path, saved[1], _meta(metrics={"accuracy": 0.95}))
    assert file_digest(path) != first
    assert load_checkpoint(path)[1].metrics == {"accuracy": 0.95}
