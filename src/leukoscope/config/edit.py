"""Change one setting in a user's config file and keep everything else as written (comments,
order, formatting): `calibrate --write` edits only `rig.registration.offsets_px`, `model promote`
only `classifier.model_path`."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import tomlkit
from pydantic import ValidationError
from tomlkit.items import Table

from leukoscope.atomic import atomic_write_bytes
from leukoscope.config import Settings, format_validation_error
from leukoscope.errors import ConfigError
from leukoscope.types import Modality

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OFFSET_DECIMALS = 2
"""Offsets are written to 0.01 px: finer is below what registration resolves."""


def _table(parent: tomlkit.TOMLDocument | Table, key: str) -> Table:
    node = parent.get(key)
    if node is None:
        node = tomlkit.table()
        parent[key] = node
    if not isinstance(node, Table):
        raise ConfigError(f"{key} is not a table in the config file")
    return node


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        return tomlkit.parse(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _write(path: Path, document: tomlkit.TOMLDocument) -> Settings:
    new_text = tomlkit.dumps(document)
    try:
        settings = Settings.model_validate(tomllib.loads(new_text))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    atomic_write_bytes(path, new_text.encode("utf-8"))
    return settings


def write_model_path(path: Path, model: Path) -> Settings:
    """Set `classifier.model_path` in `path` (created if missing), nothing else (`model
    promote`); the settings the file now gives. ConfigError as `write_offsets`."""
    document = _read(path)
    _table(document, "classifier")["model_path"] = str(model)
    return _write(path, document)


def write_offsets(path: Path, offsets: Mapping[Modality, tuple[float, float]]) -> Settings:
    """Set `rig.registration.offsets_px` in `path` (created if missing), nothing else; the
    settings the file now gives. ConfigError if the file is not valid TOML or the result is not
    a valid configuration (the file is then left as it was)."""
    document = _read(path)
    registration = _table(_table(document, "rig"), "registration")
    values = tomlkit.table()
    for modality, (dy, dx) in offsets.items():
        values[modality.value] = [
            round(dy, OFFSET_DECIMALS) + 0.0,
            round(dx, OFFSET_DECIMALS) + 0.0,
        ]
    registration["offsets_px"] = values
    return _write(path, document)


def write_exposures(path: Path, exposures: Mapping[Modality, float]) -> Settings:
    """Set `rig.camera.exposure_us.<modality>` for the given lights in `path` (created if
    missing), nothing else (`calibrate --exposure`); ConfigError as `write_offsets`."""
    document = _read(path)
    camera = _table(_table(document, "rig"), "camera")
    table = _table(camera, "exposure_us")
    for modality, exposure in exposures.items():
        table[modality.value] = round(float(exposure), 1)
    return _write(path, document)
