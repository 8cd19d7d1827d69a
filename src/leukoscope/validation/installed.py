"""The models a lab knows of, with their evidence (`leukoscope model list`), and promotion of a
validated model to the pipeline's model (`leukoscope model promote`).

Known models: the shipped default, the configured `[classifier] model_path`, and every model file
a validation record of the results database names. Promotion sets `classifier.model_path` in the
config file, and only for a model with a passing validation (PASS on real acquisitions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leukoscope.classifier.checkpoint import file_digest, read_checkpoint
from leukoscope.classifier.shipped import DEFAULT_MODEL
from leukoscope.classifier.training_data import TrainedOn, trained_on
from leukoscope.config import Settings
from leukoscope.errors import CheckpointError, ParameterError
from leukoscope.results.validations import ValidationRecord, validation_records


@dataclass
class KnownModel:
    """One model file and what is known of it."""

    path: Path
    sha256: str = ""
    arch: str = ""
    trained: TrainedOn = field(default_factory=lambda: TrainedOn(None, None))
    roles: list[str] = field(default_factory=list)  # "shipped default", "configured", "in use"
    validations: list[ValidationRecord] = field(default_factory=list)
    note: str = ""  # why the file could not be read

    @property
    def passing(self) -> list[ValidationRecord]:
        """Its passing validations (PASS on real acquisitions), oldest first."""
        return [v for v in self.validations if v.passing]


def describe_model(path: Path) -> KnownModel:
    """A model file's digest, architecture and training data; a note if it cannot be read."""
    path = Path(path)
    model = KnownModel(path)
    if not path.is_file():
        model.note = "file not found"
        return model
    model.sha256 = file_digest(path)
    try:
        _, meta = read_checkpoint(path)
    except CheckpointError as exc:
        model.note = str(exc)
        return model
    model.arch = meta.arch
    model.trained = trained_on(meta.provenance)
    return model


def known_models(settings: Settings, database: Path) -> list[KnownModel]:
    """The shipped default, the configured model and every model validated in `database`, each
    once (by SHA-256), with its validation records."""
    records = validation_records(database)
    configured = settings.classifier.model_path
    in_use = Path(configured or DEFAULT_MODEL).resolve()
    candidates: list[tuple[Path, str]] = [(DEFAULT_MODEL, "shipped default")]
    if configured is not None:
        candidates.append((Path(configured), "configured"))
    found: dict[str, KnownModel] = {}
    for path, role in candidates:
        model = describe_model(path)
        entry = found.setdefault(model.sha256 or f"missing:{path.resolve()}", model)
        entry.roles.append(role)
        if path.resolve() == in_use and "in use" not in entry.roles:
            entry.roles.append("in use")
    for record in records:
        if record.model_sha256 not in found:
            path = Path(record.model_path)
            model = describe_model(path)
            if model.sha256 != record.model_sha256:  # gone, or changed since it was validated
                note = "file not found" if not path.is_file() else "file changed since validated"
                model = KnownModel(path, record.model_sha256, note=note)
            found[record.model_sha256] = model
        found[record.model_sha256].validations.append(record)
    return list(found.values())


def _counts(records: Sequence[ValidationRecord]) -> str:
    kinds = Counter(
        f"{r.verdict} on simulated acquisitions" if r.simulated else r.verdict for r in records
    )
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))


def promotable(model_path: Path, database: Path) -> tuple[KnownModel, list[ValidationRecord]]:
    """The model and its passing validations; ParameterError (one line) naming what is missing."""
    model = describe_model(model_path)
    if model.note:
        raise CheckpointError(f"{model_path}: {model.note}")
    records = validation_records(database, model.sha256)
    passing = [r for r in records if r.passing]
    if passing:
        return model, passing
    what = f"{model_path} (sha256 {model.sha256[:12]})"
    if not records:
        raise ParameterError(
            f"{what} has no validation record in {database}: run `leukoscope validate ... "
            f"--model {model_path}` on the lab's labelled acquisitions first"
        )
    raise ParameterError(
        f"{what} has no passing validation in {database} ({_counts(records)}; only a PASS on "
        "real acquisitions counts)"
    )
