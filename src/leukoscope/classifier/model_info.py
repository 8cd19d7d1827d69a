"""What a checkpoint says of the model a run used: architecture, version, cross-validated metrics
(shown by the report and the review page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leukoscope.classifier.training_data import TrainedOn, trained_on
from leukoscope.errors import CheckpointError
from leukoscope.types import CELL_CLASSES, MODALITIES

CV_METRICS: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy"),
    ("macro_f1", "macro-F1"),
    ("balanced_accuracy", "balanced accuracy"),
)
"""Cross-validation summary keys shown, with their display names."""


@dataclass(frozen=True)
class ModelInfo:
    """The model a run used, as far as its checkpoint can still be read."""

    path: str
    version: str = ""
    arch: str = ""
    modalities: tuple[str, ...] = tuple(m.value for m in MODALITIES)
    classes: tuple[str, ...] = tuple(c.value for c in CELL_CLASSES)  # the five when unreadable
    created: str = ""
    cv_folds: int | None = None
    cv: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (mean, std), 0..1
    note: str = ""  # why something is missing
    trained: TrainedOn = field(default_factory=lambda: TrainedOn(None, None))

    @property
    def name(self) -> str:
        """The checkpoint's file name (or "unknown")."""
        return Path(self.path).name if self.path else "unknown"

    @property
    def cv_label(self) -> str:
        """What the CV figures are: "cross-validation" only for a model recorded as trained on
        real acquisitions; else "simulator cross-validation" (simulated or unknown data)."""
        return "cross-validation" if self.trained.real else "simulator cross-validation"


def _cv_metrics(metrics: dict[str, Any]) -> tuple[int | None, dict[str, tuple[float, float]]]:
    """The cross-validated figures of the model as the pipeline runs it: with its prior correction
    when the checkpoint has one, else the raw softmax's."""
    summary = metrics.get("cross_validation_prior_corrected") or metrics.get("cross_validation")
    if not isinstance(summary, dict):
        return None, {}
    found: dict[str, tuple[float, float]] = {}
    for key, _ in CV_METRICS:
        stat = summary.get(key)
        if isinstance(stat, dict) and isinstance(stat.get("mean"), (int, float)):
            found[key] = (float(stat["mean"]), float(stat.get("std", 0.0)))
    folds = summary.get("folds")
    return (int(folds) if isinstance(folds, int) else None), found


def read_model_info(model_path: str, model_version: str) -> ModelInfo:
    """Metadata of the checkpoint a run recorded; a note instead of an error if it is unreadable."""
    if not model_path:
        return ModelInfo(path="", version=model_version, note="the run recorded no model file")
    from leukoscope.classifier.checkpoint import read_checkpoint

    try:
        _, meta = read_checkpoint(Path(model_path))
    except CheckpointError as exc:
        return ModelInfo(path=model_path, version=model_version, note=f"metadata unreadable: {exc}")
    folds, cv = _cv_metrics(meta.metrics)
    provenance = meta.provenance
    version = model_version or str(provenance.get("version", ""))
    return ModelInfo(
        path=model_path,
        version=version,
        arch=meta.arch,
        modalities=tuple(m.value for m in meta.modalities),
        classes=tuple(c.value for c in meta.classes),
        created=str(provenance.get("created_utc", "")),
        cv_folds=folds,
        cv=cv,
        note="" if cv else "the checkpoint holds no cross-validation metrics",
        trained=trained_on(provenance),
    )
