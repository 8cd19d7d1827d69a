"""Atomic writes for the instrument: the project's one writer lives in `leukoscope.atomic`."""

from __future__ import annotations

from leukoscope.atomic import (
    atomic_file,
    atomic_folder,
    atomic_write_bytes,
    atomic_write_text,
    check_target,
    fsync_dir,
    make_folder,
    temporary_name,
    why,
)

__all__ = [
    "atomic_file",
    "atomic_folder",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_target",
    "fsync_dir",
    "make_folder",
    "temporary_name",
    "why",
]
