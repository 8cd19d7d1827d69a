"""A file whose every write fails with ENOSPC: a full disk, where no tmpfs can be mounted."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import IO


class FullDiskFile(io.BufferedWriter):
    """Opened like the writer's temporary file; `write` raises OSError(ENOSPC)."""

    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def open_full(path: Path) -> IO[bytes]:
    """`leukoscope.atomic._open_new`'s stand-in: creates the temporary file, refuses every byte."""
    return FullDiskFile(io.FileIO(os.fspath(path), "wb"))
