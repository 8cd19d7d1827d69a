"""The `leukoscope` app itself: root options, consoles, effective settings, the entry point."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from leukoscope import __version__
from leukoscope.config import Settings, load_settings
from leukoscope.errors import LeukoscopeError
from leukoscope.types import SampleSummary

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="leukoscope",
    help="Multimodal white-blood-cell differential: rig, pipeline, classifier, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    handler = logging.StreamHandler(_StderrNow())
    handler.setFormatter(_Plain() if verbose == 0 else _Detailed())
    logging.basicConfig(level=level, handlers=[handler])


class _Plain(logging.Formatter):
    """What a user reads: `warning: ...` on one line, like the CLI's own warnings."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _Detailed(logging.Formatter):
    """With -v: time, level and where it came from."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


class _StderrNow:
    """Whatever sys.stderr is when a line is logged: while a live display runs, rich points it at a
    proxy that prints above the display, so a warning never leaves a stale live frame behind."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def pipeline_settings(cells: int | None, db: Path | None) -> Settings:
    """The settings with the --cells and --db a pipeline command was given."""
    current = settings()
    if cells is not None:
        current.pipeline.target_cells = cells
    if db is not None:
        current.pipeline.results_db = db
    return current


def notice(message: str) -> None:
    """One plain line on stderr (no rich markup)."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def print_summary(summary: SampleSummary) -> None:
    """A sample's final table and, when there is one, why it stopped."""
    from leukoscope.report.table import summary_table

    console.print(summary_table(summary))
    if summary.status_reason:
        console.print(summary.status_reason, soft_wrap=True, markup=False, highlight=False)


def write_text(path: Path, text: str) -> None:
    """Write a file the user named through the one writer (`leukoscope.atomic`: a regular file or
    a new path, atomically); one error line (StorageError) when it cannot be written."""
    from leukoscope.atomic import atomic_write_text

    atomic_write_text(path, text)


def _few_malloc_arenas(arenas: int = 2) -> None:
    """glibc: at most `arenas` malloc arenas. Every thread of a run (capture, writer, pipeline
    stages, thread pools) allocates frames; one arena each kept freed frames mapped (run --simulate's
    peak 1.25-1.4 GB -> about 1.07 GB, docs/performance.md). MALLOC_ARENA_MAX, when set, wins."""
    if sys.platform != "linux" or os.environ.get("MALLOC_ARENA_MAX"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        return  # not glibc


def main() -> None:
    """Console-script entry point: our errors become one clear line and exit status 2."""
    _few_malloc_arenas()
    try:
        app()
    except LeukoscopeError as exc:
        for line in str(exc).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except OSError as exc:  # the system refused (disk full, read-only, permissions): one line
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        raise SystemExit(2) from None
