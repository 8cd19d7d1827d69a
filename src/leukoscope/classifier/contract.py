"""The export contract shared by export and inference, without torch: the ONNX graph's input and
output names, where a checkpoint's graph lives and how a graph names the checkpoint it came from.

`export` writes graphs that keep this contract and `infer` runs them; both import this module and
neither imports the other at import time (`infer` calls `export` only to export on the fly).
"""

from __future__ import annotations

from pathlib import Path

from leukoscope.errors import CheckpointError

ONNX_OPSET = 17
INPUT_NAME = "crops"
OUTPUT_NAMES = ("probabilities", "head_probabilities", "features")
"""`features`: the pooled feature vector the heads read (the open-set score's input)."""
DIGEST_KEY = "leukoscope.checkpoint_sha256"
META_KEY = "leukoscope.meta"


def onnx_path_for(checkpoint: Path) -> Path:
    """Where the ONNX graph of a checkpoint lives by default: beside it, suffix `.onnx`."""
    return Path(checkpoint).with_suffix(".onnx")


def read_onnx_digest(path: Path) -> str:
    """The checkpoint digest recorded in an exported graph ('' if none)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable ONNX file ({exc})") from None
    return next((p.value for p in graph.metadata_props if p.key == DIGEST_KEY), "")
