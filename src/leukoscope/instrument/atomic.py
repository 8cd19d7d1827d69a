"""Atomic writes: a file or a folder appears under its real name complete, or not at all.

Everything is written under a temporary name in the same folder, fsynced, then renamed; a crash
leaves either the old state or the new one. Disk-full and read-only errors become StorageError.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from leukoscope.errors import StorageError


def temporary_name(path: Path) -> Path:
    """The temporary sibling `path` is written under (`.NAME.PID.tmp`)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Write `path` through a temporary file in the same folder, fsync, rename; clean up on error."""
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):  # disk full, read-only
            raise StorageError(f"cannot write {path}: {why(exc, path.parent)}") from None
        raise
    fsync_dir(path.parent)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Fill a temporary folder beside `path`, fsync every file in it, then put it in place of
    `path` (an older `path` is removed only once the new one is complete)."""
    tmp = temporary_name(path)
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        yield tmp
        for folder, _, files in os.walk(tmp):
            for name in files:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            fsync_dir(Path(folder))
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise StorageError(f"cannot write {path}: {why(exc, path.parent)}") from None
        raise
    shutil.rmtree(old, ignore_errors=True)
    fsync_dir(path.parent)


def why(exc: OSError, folder: Path) -> str:
    """The system's reason, saying so when the disk is full (some writers report a short write)."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return reason
    with suppress(OSError):
        if shutil.disk_usage(folder).free < 1 << 20:
            return f"{reason} (no space left on the device)"
    return reason


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename) durable, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    with atomic_file(path) as handle:
        handle.write(data)
    return path


def make_folder(folder: Path) -> None:
    """Create `folder` (and its parents); StorageError says why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create folder {folder}: {exc.strerror or exc}") from None
