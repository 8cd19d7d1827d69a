"""Output folders that appear whole or not at all: built beside their target, then renamed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from leukoscope.errors import ParameterError


def refuse_existing(out: Path) -> None:
    """ParameterError when `out` exists (nothing is ever written into an existing folder)."""
    if out.exists() or out.is_symlink():
        raise ParameterError(f"{out}: already exists; choose a new output folder")


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out`, renamed to `out` when the block succeeds, removed if not."""
    out = Path(out)
    refuse_existing(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        refuse_existing(out)  # something else may have created it meanwhile
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
