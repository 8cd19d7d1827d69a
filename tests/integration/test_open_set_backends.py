"""The open-set score of a model is the same through PyTorch and ONNX Runtime, fitted or reloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from leukoscope.classifier.checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from leukoscope.classifier.export import export_checkpoint
from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.open_set_fit import refit_checkpoint
from leukoscope.types import MODALITIES

torch.set_num_threads(1)
SIZE = 32


def test_the_intensity_score_agrees_between_backends(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    meta = ModelMeta.default(
        "hs_mm_mimo",
        MODALITIES,
        1,
        options={"width": 0.5},
        input_size=SIZE,
        norm_mean=[[0.4]] * 4,
        norm_std=[[0.2]] * 4,
    )
    path = tmp_path / "model.pt"
    torch.manual_seed(0)
    save_checkpoint(path, meta.build().eval(), meta)
    crops = rng.integers(0, 256, (60, 4, SIZE, SIZE), dtype=np.uint8)
    fitted = refit_checkpoint(path, crops, rng.integers(0, 5, 60), threads=1)
    assert fitted.open_set is not None and fitted.open_set.score == "mahalanobis+intensity"
    assert load_checkpoint(path)[1].open_set == fitted.open_set
    export_checkpoint(path)
    cells = rng.integers(0, 256, (7, 4, SIZE, SIZE), dtype=np.uint8)
    a = Predictor.load(path, "torch", threads=1).predict(cells)
    b = Predictor.load(path, "onnx", threads=1).predict(cells)
    assert a.open_set_scores.shape == b.open_set_scores.shape == (7,)
    np.testing.assert_allclose(a.open_set_scores, b.open_set_scores, rtol=1e-3, atol=1e-3)
