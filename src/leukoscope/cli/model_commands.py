"""`leukoscope model list` and `model promote`: the models a lab knows of, with their evidence,
and which one the pipeline runs (validation/installed.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, console, settings, state
from leukoscope.cli.help import RESULTS_DB

model_app = typer.Typer(
    help="Installed models, their validations, and which one the pipeline uses.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")

_DB_HELP = "Results database holding the validations; default: configured."
_DB = Annotated[Path | None, typer.Option("--db", help=_DB_HELP, show_default=RESULTS_DB)]


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@model_app.command("list")
def model_list(db: _DB = None) -> None:
    """Each known model: file, SHA-256, training data, validations; `*` marks the one in use."""
    from leukoscope.validation.installed import known_models

    current = settings()
    database = db or current.pipeline.results_db
    for model in known_models(current, database):
        mark = "*" if "in use" in model.roles else " "
        roles = f"  [{', '.join(model.roles)}]" if model.roles else ""
        head = f"{mark} {model.path}  sha256 {model.sha256[:12] or '-'}"
        if model.note:
            _say(f"{head}  ({model.note}){roles}")
        else:
            _say(f"{head}  {model.arch}  trained on {model.trained.describe()}{roles}")
        if not model.validations:
            _say("    no validation record")
        for v in reversed(model.validations):  # newest first
            kind = f"{v.verdict} (simulated)" if v.simulated else v.verdict
            _say(
                f"    {kind:<16} rig {v.rig_digest}  {v.samples} samples  accuracy "
                f"{100 * v.accuracy:.1f} %  largest bias {v.largest_bias_class or '-'} "
                f"{v.largest_bias_pp:.1f} pp  {_when(v.created_s)}  by {v.validated_by}"
            )
    _say(f"validations from {database}; * = the model the pipeline uses now")


@model_app.command("promote")
def model_promote(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) with a passing validation.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config file to change; default: the one in use."),
    ] = None,
    db: _DB = None,
) -> None:
    """Make MODEL the pipeline's model (`classifier.model_path`), only with a passing validation."""
    from leukoscope.config.edit import write_model_path
    from leukoscope.validation.installed import promotable

    database = db or settings().pipeline.results_db
    _, passing = promotable(model, database)
    target = config or state.config_path or Path("leukoscope.toml")
    write_model_path(target, model.resolve())
    _say(f"wrote classifier.model_path = {model.resolve()} to {target}")
    rigs = sorted({v.rig_digest for v in passing})
    _say(f"passing validation on rig set-up(s): {', '.join(rigs)} (results of other set-ups stay "
         "unreleasable until validated there)")  # fmt: skip
