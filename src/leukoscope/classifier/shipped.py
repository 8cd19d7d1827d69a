"""The model that ships inside the package, used when the config names none."""

from __future__ import annotations

from pathlib import Path

from leukoscope.errors import CheckpointError

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default.pt"


def resolve_model_path(configured: Path | None) -> Path:
    """The configured checkpoint, or the shipped default; CheckpointError if it is not there."""
    path = configured or DEFAULT_MODEL
    if not path.is_file():
        hint = "" if configured else " (the shipped default model is missing from this install)"
        raise CheckpointError(f"model file {path} not found{hint}")
    return path
