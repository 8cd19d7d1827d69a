"""Checks an exported graph against its checkpoint: onnxruntime's probabilities against PyTorch's
on the same random crops (used by `leukoscope export`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leukoscope.classifier.infer import Predictor, onnx_runner
from leukoscope.errors import CheckpointError

EXPORT_TOLERANCE = 1e-4


def check_export(checkpoint: Path, graph: Path, batch: int = 2, seed: int = 0) -> float:
    """Largest probability difference between onnxruntime on `graph` and PyTorch on `checkpoint`
    for random crops; CheckpointError if it exceeds EXPORT_TOLERANCE."""
    reference = Predictor.load(checkpoint, "torch", threads=1)  # a small check: one core
    meta = reference.meta
    exported = Predictor(meta, onnx_runner(graph, threads=1), reference.num_heads, "onnx")
    shape: tuple[int, ...] = (batch, len(meta.modalities), meta.input_size, meta.input_size)
    if meta.in_chans > 1:
        shape = (*shape, meta.in_chans)
    crops = np.random.default_rng(seed).random(shape, dtype=np.float32)
    a, b = reference.predict(crops), exported.predict(crops)
    worst = float(
        max(
            np.abs(a.probabilities - b.probabilities).max(),
            np.abs(a.head_probabilities - b.head_probabilities).max(),
        )
    )
    if worst > EXPORT_TOLERANCE:
        raise CheckpointError(f"{graph}: onnxruntime differs from PyTorch by {worst:.2e}")
    return worst
