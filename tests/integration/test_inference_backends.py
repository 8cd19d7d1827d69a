"""Predictor: PyTorch and ONNX Runtime agree, match the model, take any batch; ONNX export files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from leukoscope.classifier.checkpoint import ModelMeta, save_checkpoint
from leukoscope.classifier.contract import onnx_path_for, read_onnx_digest
from leukoscope.classifier.export import export_checkpoint, inference_module
from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.models import MultimodalModel, build_model, predict_proba
from leukoscope.errors import ParameterError
from leukoscope.types import MODALITIES, Modality

torch.set_num_threads(1)
SIZE = 64

CASES = {
    "single-rgb": ("single", (Modality.COLOR2,), 3, {}),
    "ensemble-mono": ("ensemble", (Modality.COLOR1, Modality.FLUORESCENCE), 1, {}),
    "mm_mimo-rgb": ("mm_mimo", MODALITIES, 3, {}),
    "hs_mm_mimo-mono": ("hs_mm_mimo", MODALITIES, 1, {}),
    "hs_literal-rgb": ("hs_mm_mimo", MODALITIES[1:], 3, {"hs_variant": "literal"}),
}


def _confident(model: MultimodalModel, seed: int) -> MultimodalModel:
    """Random BatchNorm statistics and a sharp classifier, so probabilities are far from uniform."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
            elif isinstance(module, torch.nn.Linear):
                module.weight.mul_(30.0)
    return model.eval()


def _make(tmp: Path, case: str) -> tuple[Path, MultimodalModel, ModelMeta]:
    arch, mods, chans, options = CASES[case]
    rng = np.random.default_rng(len(case))
    meta = ModelMeta.default(
        arch,
        mods,
        chans,
        options={"width": 0.5, **options},
        input_size=SIZE,
        norm_mean=rng.uniform(0.2, 0.6, (len(mods), chans)).tolist(),
        norm_std=rng.uniform(0.1, 0.3, (len(mods), chans)).tolist(),
    )
    model = _confident(meta.build(), seed=len(case))
    path = tmp / f"{case}.pt"
    save_checkpoint(path, model, meta)
    return path, model, meta


def _crops(meta: ModelMeta, batch: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    shape = (batch, len(meta.modalities), size, size)
    if meta.in_chans > 1:
        shape = (*shape, meta.in_chans)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _reference(model: MultimodalModel, meta: ModelMeta, crops: np.ndarray) -> np.ndarray:
    """The documented preprocessing (uint8 crops), then the model's own forward pass."""
    x = crops.astype(np.float32) / 255.0
    x = x[:, :, None] if meta.in_chans == 1 else x.transpose(0, 1, 4, 2, 3)
    mean = np.asarray(meta.norm_mean, np.float32)[:, :, None, None]
    std = np.asarray(meta.norm_std, np.float32)[:, :, None, None]
    with torch.no_grad():
        return predict_proba(model(torch.from_numpy((x - mean) / std))).numpy()


@pytest.fixture(scope="module", params=sorted(CASES))
def case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, MultimodalModel, ModelMeta, Predictor, Predictor]:
    path, model, meta = _make(tmp_path_factory.mktemp("models"), request.param)
    return (
        path,
        model,
        meta,
        Predictor.load(path, "torch", threads=1),
        Predictor.load(path, "onnx", threads=1),
    )


def test_backends_agree_and_match_the_model(
    case: tuple[Path, MultimodalModel, ModelMeta, Predictor, Predictor],
) -> None:
    _, model, meta, torch_pred, onnx_pred = case
    crops = _crops(meta, 5)
    a, b = torch_pred.predict(crops), onnx_pred.predict(crops)
    heads = model.num_heads
    assert a.probabilities.shape == b.probabilities.shape == (5, 5)
    assert a.head_probabilities.shape == b.head_probabilities.shape == (5, heads, 5)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4, rtol=0)
    np.testing.assert_allclose(a.head_probabilities, b.head_probabilities, atol=1e-4, rtol=0)
    assert a.head_probabilities.max() > 0.4  # a confident model: agreement is not trivial

    np.testing.assert_allclose(b.probabilities, _reference(model, meta, crops), atol=1e-4, rtol=0)
    np.testing.assert_allclose(b.head_probabilities.mean(1), b.probabilities, atol=1e-6)


@pytest.mark.parametrize("batch", [0, 1, 3])
def test_any_batch_size(
    case: tuple[Path, MultimodalModel, ModelMeta, Predictor, Predictor], batch: int
) -> None:
    _, model, meta, torch_pred, onnx_pred = case
    for predictor in (torch_pred, onnx_pred):
        out = predictor.predict(_crops(meta, batch, seed=batch))
        assert out.probabilities.shape == (batch, 5)
        assert out.head_probabilities.shape == (batch, model.num_heads, 5)
        assert np.isfinite(out.probabilities).all()
        np.testing.assert_allclose(out.probabilities.sum(1), np.ones(batch), atol=1e-5)


def test_predictor_properties(
    case: tuple[Path, MultimodalModel, ModelMeta, Predictor, Predictor],
) -> None:
    _, model, meta, torch_pred, onnx_pred = case
    for predictor in (torch_pred, onnx_pred):
        assert predictor.meta == meta
        assert predictor.input_size == SIZE
        assert predictor.modalities == tuple(meta.modalities)
        assert predictor.num_heads == model.num_heads


@pytest.mark.parametrize(
    ("arch", "options"),
    [("hs_mm_mimo", {}), ("hs_mm_mimo", {"hs_variant": "literal"}), ("ensemble", {})],
)
def test_inference_form_equals_the_model(arch: str, options: dict[str, str]) -> None:
    model = _confident(build_model(arch, MODALITIES, 3, width=0.5, **options), 1)
    x = torch.randn(2, 4, 3, 48, 48)
    with torch.no_grad():
        logits = model(x)
        fast = inference_module(model)
        assert fast.split_inputs  # one input per modality
        for module, inputs in ((fast, x.unbind(1)), (inference_module(model, False), (x,))):
            probs, heads, _ = module(*inputs)
            torch.testing.assert_close(heads, logits.softmax(-1), atol=1e-5, rtol=0)
            torch.testing.assert_close(probs, predict_proba(logits), atol=1e-5, rtol=0)


def test_wrong_inputs_are_refused(tmp_path: Path) -> None:
    path, _, _ = _make(tmp_path, "hs_mm_mimo-mono")
    predictor = Predictor.load(path, "onnx", threads=1)
    with pytest.raises(ParameterError, match="modalities"):
        predictor.predict(np.zeros((1, 3, SIZE, SIZE), np.uint8))
    with pytest.raises(ParameterError, match=r"\(B, M, H, W\)"):
        predictor.predict(np.zeros((1, 4, SIZE, SIZE, 3), np.uint8))
    with pytest.raises(ParameterError, match="backend"):
        Predictor.load(path, "tensorrt")  # type: ignore[arg-type]


def test_resize_and_dtype_scaling(tmp_path: Path) -> None:
    path, _, meta = _make(tmp_path, "hs_mm_mimo-mono")
    predictor = Predictor.load(path, "onnx", threads=1)
    small = _crops(meta, 2)
    large = np.repeat(np.repeat(small, 2, axis=2), 2, axis=3)  # 128 px, area-averages back exactly
    np.testing.assert_allclose(
        predictor.predict(large).probabilities, predictor.predict(small).probabilities, atol=1e-6
    )
    as16 = small.astype(np.uint16) * 257  # same intensities in 16-bit range
    asfloat = small.astype(np.float32) / 255.0
    reference = predictor.predict(small).probabilities
    np.testing.assert_allclose(predictor.predict(as16).probabilities, reference, atol=1e-5)
    np.testing.assert_allclose(predictor.predict(asfloat).probabilities, reference, atol=1e-5)


def test_exported_file_is_used_and_stale_one_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, model, meta = _make(tmp_path, "mm_mimo-rgb")
    crops = _crops(meta, 2)
    onnx_file = export_checkpoint(path)
    assert onnx_file == onnx_path_for(path) and onnx_file.is_file()
    assert read_onnx_digest(onnx_file)
    from_file = Predictor.load(path, "onnx", threads=1).predict(crops).probabilities
    np.testing.assert_allclose(from_file, _reference(model, meta, crops), atol=1e-4)

    # Another checkpoint written over the same path: the old graph must not be used.
    other = _confident(meta.build(), seed=99)
    save_checkpoint(path, other, meta)
    with caplog.at_level(logging.WARNING, logger="leukoscope.classifier.infer"):
        stale = Predictor.load(path, "onnx", threads=1).predict(crops).probabilities
    assert "exported from another checkpoint" in caplog.text
    np.testing.assert_allclose(stale, _reference(other, meta, crops), atol=1e-4)
    assert np.abs(stale - from_file).max() > 1e-3


def test_data_parallel_onnx_equals_serial(tmp_path: Path) -> None:
    path, _, meta = _make(tmp_path, "hs_mm_mimo-mono")
    crops = _crops(meta, 5)  # an uneven split over two workers
    serial = Predictor.load(path, "onnx", threads=1).predict(crops)
    two_cores = Predictor.load(path, "onnx", threads=2)
    parallel = two_cores.predict(crops)
    np.testing.assert_allclose(parallel.probabilities, serial.probabilities, atol=1e-6)
    np.testing.assert_allclose(parallel.head_probabilities, serial.head_probabilities, atol=1e-6)
    single = two_cores.predict(crops[:1])  # one cell: intra-op threads
    np.testing.assert_allclose(single.probabilities, serial.probabilities[:1], atol=1e-6)


def test_cli_export(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from leukoscope.cli import app
    from leukoscope.errors import CheckpointError

    path, _, _ = _make(tmp_path, "single-rgb")
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(path), "--out", str(tmp_path / "x.onnx")])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "max probability difference" in result.output
    assert (tmp_path / "x.onnx").is_file()

    broken = tmp_path / "broken.pt"
    broken.write_bytes(path.read_bytes()[:200])
    result = runner.invoke(app, ["export", str(broken)])
    assert isinstance(result.exception, CheckpointError)
