"""The `leukoscope` command: thin typer layer that parses, calls the library and renders with rich."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from leukoscope import __version__
from leukoscope.config import Settings, load_settings, render_default_toml, render_toml
from leukoscope.errors import ConfigError, LeukoscopeError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="leukoscope",
    help="Multimodal white-blood-cell differential: rig, pipeline, classifier, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Write, check and show the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@dataclass
class _State:
    config_path: Path | None = None
    verbose: int = 0


state = _State()


def settings() -> Settings:
    """The effective settings for this invocation (file from --config, then env overrides)."""
    return load_settings(state.config_path)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"leukoscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show version."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="LEUKOSCOPE_CONFIG", help="TOML config file."),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logging (-v, -vv).")
    ] = 0,
) -> None:
    state.config_path = config
    state.verbose = verbose
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(help="Where to write the file.")] = Path(
        "leukoscope.toml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented configuration file holding every default."""
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")
    path.write_text(render_default_toml(), encoding="utf-8")
    console.print(f"wrote {path}")


@config_app.command("validate")
def config_validate(path: Annotated[Path, typer.Argument(help="Config file to check.")]) -> None:
    """Check a configuration file; print one line per problem."""
    try:
        load_settings(path, environ={})
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    console.print(f"{path}: valid")


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (file, then environment overrides)."""
    typer.echo(render_toml(settings()), nl=False)


def main() -> None:
    """Console-script entry point: our errors become one clear line and exit status 2."""
    try:
        app()
    except LeukoscopeError as exc:
        for line in str(exc).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise SystemExit(2) from None
