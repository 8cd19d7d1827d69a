"""Options and checks that several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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


def new_sample_folder(sample: str, folder: Path, replace: bool) -> Path:
    """Check the sample id; `folder` absent or empty (cleared with --replace), else an error."""
    from leukoscope.acquisition_files.storage import prepare_sample_folder
    from leukoscope.ids import check_sample_id

    check_sample_id(sample)
    return prepare_sample_folder(folder, replace=replace)
