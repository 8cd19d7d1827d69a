"""`leukoscope config init|validate|show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, console, settings, write_text
from leukoscope.config import load_settings
from leukoscope.config.toml_render import render_default_toml, render_toml
from leukoscope.errors import ConfigError

config_app = typer.Typer(help="Write, check and show the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


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
    write_text(path, render_default_toml())
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
