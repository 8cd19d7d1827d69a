"""What `--help` shows: flags without a `<bool>` type, and the defaults the configuration gives.

typer prints `<bool>` after every flag (`--simulate <bool>`, even `--help <bool>`), which reads as
if the flag took a value; a flag gets an empty metavar here instead. Options whose default comes
from the configuration (`--cells`, `--db`, ...) show the effective value and its key, read from
`--config` and the environment as the command itself would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from leukoscope.config import Settings
from leukoscope.errors import LeukoscopeError

ConfigDefault = tuple[str, Callable[[Settings], object]]
"""(what the help names, how to read it from the effective settings)"""

_TARGET: ConfigDefault = ("pipeline.target_cells", lambda s: s.pipeline.target_cells)
_DB: ConfigDefault = ("pipeline.results_db", lambda s: s.pipeline.results_db)
_DATA_DIR: ConfigDefault = ("rig.acquisition.data_dir", lambda s: s.rig.acquisition.data_dir)
_MODEL: ConfigDefault = (
    "classifier.model_path",
    lambda s: s.classifier.model_path or "the shipped model",
)

CONFIG_DEFAULTS: dict[tuple[str, str], ConfigDefault] = {
    ("run", "cells"): _TARGET,
    ("batch", "cells"): _TARGET,
    ("serve", "cells"): _TARGET,
    ("run", "db"): _DB,
    ("batch", "db"): _DB,
    ("serve", "db"): _DB,
    ("report", "db"): _DB,
    ("review", "db"): _DB,
    ("runs", "db"): _DB,
    ("samples", "db"): _DB,
    ("cells", "db"): _DB,
    **{(command, "db"): _DB for command in ("add", "reset", "disable", "enable", "list")},
    ("run", "out"): _DATA_DIR,
    ("acquire", "out"): (
        "rig.acquisition.data_dir + /SAMPLE",
        lambda s: s.rig.acquisition.data_dir,
    ),
    ("validate", "model"): _MODEL,
    ("devices", "producer"): (
        "rig.camera.producer_path",
        lambda s: s.rig.camera.producer_path or "GENICAM_GENTL64_PATH",
    ),
}


def _effective_settings() -> Settings | None:
    from leukoscope.cli.core import settings

    try:
        return settings()
    except LeukoscopeError:  # a broken config file: help still shows, without values
        return None


def _config_default(command: str, name: str) -> str | None:
    found = CONFIG_DEFAULTS.get((command, name))
    if found is None:
        return None
    key, read = found
    current = _effective_settings()
    if current is None:
        return f"from config {key}"
    value = read(current)
    shown = str(value) if not isinstance(value, Path) else value.as_posix()
    return f"{shown}, config {key}"


def _tidy(command: str, params: list[Any]) -> None:
    for param in params:
        if not isinstance(param, TyperOption):
            continue
        if param.is_flag and not param.count and param.metavar is None:
            param.metavar = ""
        if param.default is None and param.name:
            shown = _config_default(command, param.name)
            if shown is not None:
                param.show_default = shown


class Command(TyperCommand):
    """A command whose help shows plain flags and config-derived defaults."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy(self.name or "", self.get_params(ctx))
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    """A command group whose help shows plain flags."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy(self.name or "", self.get_params(ctx))
        super().format_help(ctx, formatter)


def tidy_help(app: typer.Typer) -> None:
    """Give every command and group of `app` (registered so far) the help rendering above."""
    app.info.cls = Group
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = Command
    for group in app.registered_groups:
        if group.cls in (None, TyperGroup) or not isinstance(group.cls, type):
            group.cls = Group
        if group.typer_instance is not None:
            tidy_help(group.typer_instance)
