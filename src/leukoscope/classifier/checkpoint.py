"""One-file model checkpoints: weights plus JSON metadata, loadable with `weights_only=True`.

The file is `torch.save` of a plain dict `{"format": FORMAT_TAG, "meta": <JSON text>, "state_dict":
{name: tensor}}` (no pickled objects), written atomically (temporary file, fsync, rename). Loading
checks the metadata against what the caller expects and refuses a mismatch, naming what differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn

from leukoscope.atomic import atomic_file
from leukoscope.classifier.models import MultimodalModel, build_model
from leukoscope.classifier.open_set import OpenSet
from leukoscope.errors import CheckpointError, ParameterError
from leukoscope.types import CELL_CLASSES, CellClass, Modality

FORMAT_TAG = "leukoscope-checkpoint"
FORMAT_VERSION = 1
MAX_INPUT_SIZE = 1024
"""Largest input side a checkpoint may ask for (100000 once asked the runtime for 21.9 GB)."""


class ModelMeta(BaseModel):
    """Everything needed to rebuild, feed and trust a model. Normalisation is per modality, per
    channel, in units of the [0, 1]-scaled image (`leukoscope.imaging.to_unit_float`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # NaN norms break every field

    arch: str
    options: dict[str, Any] = Field(default_factory=dict, description="width, hs_variant, ...")
    modalities: list[Modality]
    in_chans: int = Field(ge=1)
    classes: list[CellClass] = Field(default_factory=lambda: list(CELL_CLASSES))
    input_size: int = Field(default=224, ge=8, le=MAX_INPUT_SIZE)
    norm_mean: list[list[float]]
    norm_std: list[list[float]]
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="command, date, seed, dataset, git/version"
    )
    metrics: dict[str, Any] = Field(default_factory=dict)
    class_weights: list[float] | None = Field(
        default=None,
        description="prior correction: per-head probabilities are multiplied by these and "
        "renormalised (undoes a class-balanced training sampler: count ** balance per class)",
    )
    open_set: OpenSet | None = Field(
        default=None,
        description="the open-set score and threshold that flag unidentified cells (open_set.py); "
        "None: no cell is flagged unidentified",
    )
    format_version: int = FORMAT_VERSION

    @model_validator(mode="after")
    def _consistent(self) -> ModelMeta:
        shape = (len(self.modalities), self.in_chans)
        for name in ("norm_mean", "norm_std"):
            values = getattr(self, name)
            if len(values) != shape[0] or any(len(v) != shape[1] for v in values):
                raise ValueError(f"{name} must be {shape[0]} modalities x {shape[1]} channels")
        if any(s <= 0 for row in self.norm_std for s in row):
            raise ValueError("norm_std must be positive")
        if not self.modalities or len(self.classes) < 2:
            raise ValueError("need at least one modality and two classes")
        weights = self.class_weights
        if weights is not None and (len(weights) != len(self.classes) or min(weights) <= 0):
            raise ValueError("class_weights must be one positive number per class")
        if self.open_set is not None and len(self.open_set.means) != len(self.classes):
            raise ValueError("open_set must have one mean per class")
        return self

    @classmethod
    def default(
        cls,
        arch: str,
        modalities: tuple[Modality, ...] | list[Modality],
        in_chans: int,
        **fields: Any,
    ) -> ModelMeta:
        """Metadata with identity normalisation (mean 0, std 1) unless given."""
        m = len(modalities)
        fields.setdefault("norm_mean", [[0.0] * in_chans for _ in range(m)])
        fields.setdefault("norm_std", [[1.0] * in_chans for _ in range(m)])
        return cls(arch=arch, modalities=list(modalities), in_chans=in_chans, **fields)

    def build(self) -> MultimodalModel:
        """An untrained model of this architecture and shape."""
        return build_model(
            self.arch, tuple(self.modalities), self.in_chans, len(self.classes), **self.options
        )


def save_checkpoint(path: Path, model: nn.Module, meta: ModelMeta) -> None:
    """Write weights and metadata to `path` atomically."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta_json = meta.model_dump_json()
    payload = {
        "format": FORMAT_TAG,
        "meta": meta_json,
        "state_dict": state,
        "digest": content_digest(meta_json, state),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as handle:
        torch.save(payload, handle)


def content_digest(meta_json: str, state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the metadata and every weight (name, dtype, shape, bytes), in name order:
    any corrupted byte of what is loaded changes it."""
    digest = hashlib.sha256(meta_json.encode("utf-8"))
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], ModelMeta]:
    """The raw state dict and validated metadata of a checkpoint file; CheckpointError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, unpickler and EOF errors all mean the same thing here
        reason = str(exc).split(". ")[0].splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_TAG:
        raise CheckpointError(f"{path}: not a leukoscope checkpoint")
    try:
        raw = json.loads(payload["meta"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable metadata ({exc})") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version!r}; this version reads {FORMAT_VERSION}"
        )
    try:
        meta = ModelMeta.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise CheckpointError(f"{path}: invalid metadata: {problems}") from None
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no weights")
    bad = [
        name
        for name, tensor in state.items()
        if not isinstance(tensor, torch.Tensor)
        or (tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()))
    ]
    if bad:
        shown = ", ".join(bad[:3]) + (" ..." if len(bad) > 3 else "")
        raise CheckpointError(f"{path}: corrupt weights (not finite, or not tensors): {shown}")
    stored = payload.get("digest")  # absent in checkpoints written before it was added
    if stored is not None and stored != content_digest(payload["meta"], state):
        raise CheckpointError(f"{path}: corrupt checkpoint (content digest does not match)")
    return state, meta


def _check_expected(
    path: Path,
    meta: ModelMeta,
    arch: str | None,
    modalities: tuple[Modality, ...] | list[Modality] | None,
    classes: tuple[CellClass, ...] | list[CellClass] | None,
) -> None:
    problems = []
    if arch is not None and meta.arch != arch:
        problems.append(f"architecture is {meta.arch!r}, expected {arch!r}")
    if modalities is not None:
        want = [Modality(m).value for m in modalities]
        have = [m.value for m in meta.modalities]
        if have != want:
            problems.append(f"modalities are {have}, expected {want}")
    if classes is not None:
        want = [CellClass(c).value for c in classes]
        have = [c.value for c in meta.classes]
        if have != want:
            problems.append(f"classes are {have}, expected {want}")
    if problems:
        raise CheckpointError(f"{path}: refused: " + "; ".join(problems))


def load_checkpoint(
    path: Path,
    *,
    expect_arch: str | None = None,
    expect_modalities: tuple[Modality, ...] | list[Modality] | None = None,
    expect_classes: tuple[CellClass, ...] | list[CellClass] | None = None,
) -> tuple[MultimodalModel, ModelMeta]:
    """The model (eval mode, weights loaded) and its metadata; refuses what does not match."""
    path = Path(path)
    state, meta = read_checkpoint(path)
    _check_expected(path, meta, expect_arch, expect_modalities, expect_classes)
    try:
        model = meta.build()
    except ParameterError as exc:
        raise CheckpointError(f"{path}: metadata describes no buildable model ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(
            f"{path}: weights do not fit {meta.arch}: {' '.join(first)}"
        ) from None
    return model.eval(), meta


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (ties an exported ONNX graph to its checkpoint)."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
