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


class ConfigDefault(str):
    """An option's `show_default` naming the config key its default comes from: `--help` shows the
    effective value beside the key (`typer.Option(..., show_default=RESULTS_DB)`), or this text,
    "from config KEY", when the configuration cannot be read."""

    key: str
    read: Callable[[Settings], object]

    def __new__(
        cls, key: str, read: Callable[[Settings], object], shown: str | None = None
    ) -> ConfigDefault:
        made = super().__new__(cls, f"from config {key}" if shown is None else shown)
        made.key, made.read = key, read
        return made

    def effective(self, current: Settings | None) -> ConfigDefault:
        """What help shows under the settings `current` (None: they cannot be read)."""
        if current is None:
            return ConfigDefault(self.key, self.read)
        value = self.read(current)
        shown = str(value) if not isinstance(value, Path) else value.as_posix()
        return ConfigDefault(self.key, self.read, f"{shown}, config {self.key}")


TARGET_CELLS = ConfigDefault("pipeline.target_cells", lambda s: s.pipeline.target_cells)
RESULTS_DB = ConfigDefault("pipeline.results_db", lambda s: s.pipeline.results_db)
DATA_DIR = ConfigDefault("rig.acquisition.data_dir", lambda s: s.rig.acquisition.data_dir)
SAMPLE_FOLDER = ConfigDefault(
    "rig.acquisition.data_dir + /SAMPLE", lambda s: s.rig.acquisition.data_dir
)
MODEL_PATH = ConfigDefault(
    "classifier.model_path", lambda s: s.classifier.model_path or "the shipped model"
)
GENTL_PRODUCER = ConfigDefault(
    "rig.camera.producer_path", lambda s: s.rig.camera.producer_path or "GENICAM_GENTL64_PATH"
)


def _effective_settings() -> Settings | None:
    from leukoscope.cli.core import settings

    try:
        return settings()
    except LeukoscopeError:  # a broken config file: help still shows, without values
        return None


def _tidy(params: list[Any]) -> None:
    for param in params:
        if not isinstance(param, TyperOption):
            continue
        if param.is_flag and not param.count and param.metavar is None:
            param.metavar = ""
        if isinstance(param.show_default, ConfigDefault):
            param.show_default = param.show_default.effective(_effective_settings())


class Command(TyperCommand):
    """A command whose help shows plain flags and config-derived defaults."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy(self.get_params(ctx))
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    """A command group whose help shows plain flags."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy(self.get_params(ctx))
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
