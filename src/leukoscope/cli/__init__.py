"""The `leukoscope` command: a thin typer layer that parses, calls the library and renders with rich.

One module per command group. Importing a module registers its commands on `app`; the order of
COMMAND_MODULES is the order `leukoscope --help` lists them. The console script is
`leukoscope.cli:main`.
"""

from __future__ import annotations

from importlib import import_module

from leukoscope.cli.core import app, main
from leukoscope.cli.help import tidy_help

COMMAND_MODULES = (
    "leukoscope.cli.config_commands",
    "leukoscope.cli.training",
    "leukoscope.cli.instrument",
    "leukoscope.cli.models",
    "leukoscope.cli.model_commands",
    "leukoscope.cli.simulate",
    "leukoscope.cli.pipeline",
    "leukoscope.cli.distributed",
    "leukoscope.cli.labelled",
    "leukoscope.cli.report",
    "leukoscope.cli.results",
    "leukoscope.cli.users",
    "leukoscope.cli.lis",
)
for _module in COMMAND_MODULES:
    import_module(_module)
tidy_help(app)  # after every command is registered

__all__ = ["app", "main"]
