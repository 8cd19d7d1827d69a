"""Options and checks that several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.help import RESULTS_DB, TARGET_CELLS

SIMULATE = Annotated[
    bool, typer.Option("--simulate", help="Simulated rig: emulated light controller + camera.")
]
SIM_SEED = Annotated[int, typer.Option("--seed", help="Simulated sample seed.")]
REPLACE = Annotated[
    bool,
    typer.Option(
        "--replace", help="Clear the sample's existing acquisition folder first (else refused)."
    ),
]
RESULTS_DB_OPTION = Annotated[
    Path | None, typer.Option("--db", help="Results database (SQLite).", show_default=RESULTS_DB)
]
TARGET_CELLS_OPTION = Annotated[
    int | None,
    typer.Option(
        "--cells",
        help="Target white-cell count (0 = all fields).",
        min=0,
        show_default=TARGET_CELLS,
    ),
]


def new_sample_folder(sample: str, folder: Path, replace: bool) -> Path:
    """Check the sample id; `folder` absent or empty (cleared with --replace), else an error."""
    from leukoscope.acquisition_files.storage import prepare_sample_folder
    from leukoscope.ids import check_sample_id

    check_sample_id(sample)
    return prepare_sample_folder(folder, replace=replace)
