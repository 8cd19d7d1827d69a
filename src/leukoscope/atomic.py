"""The one writer of files: a file appears under its real name complete, or not at all, and only
where a regular file (or nothing) was.

Everything is written under a temporary name in the same folder, fsynced, then renamed; a crash
leaves either the old state or the new one. The target must be a regular file or a new path: a
symbolic link, FIFO, device, socket or folder is refused before anything is written (renaming over
`/dev/full` would replace the device). Disk-full and read-only errors become one StorageError line.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from leukoscope.errors import StorageError

KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file of `mode` is, in words ('a regular file' when it is one)."""
    for test, name in KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def check_target(path: Path) -> None:
    """Refuse (StorageError naming the path and what it is) anything but a regular file or a new
    path in an existing folder. A symbolic link is refused even when it points at a regular file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise StorageError(
                f"cannot write {path}: folder {path.parent} does not exist"
            ) from None
        return
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        hint = ": name a file to write" if stat.S_ISDIR(mode) else ""
        raise StorageError(f"refusing to write {path}: it is {kind_of(mode)}{hint}")


def temporary_name(path: Path) -> Path:
    """The temporary sibling `path` is written under (`.NAME.PID.tmp`)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _open_new(tmp: Path) -> IO[bytes]:
    """Create `tmp` exclusively, never through a link (a stale one of ours is removed first)."""
    with suppress(FileNotFoundError):
        if stat.S_ISREG(os.lstat(tmp).st_mode) or stat.S_ISLNK(os.lstat(tmp).st_mode):
            tmp.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return open(tmp, "wb", opener=lambda name, _: os.open(name, flags, 0o666))


@contextmanager
def atomic_file(path: Path, *, sync: bool = True) -> Iterator[IO[bytes]]:
    """Write `path` through a temporary file in the same folder, fsync, rename; clean up on error.
    The target is checked (`check_target`) before the temporary file is made and again before the
    rename. `sync=False` skips the fsyncs: for files inside a folder that is itself made durable
    and renamed into place once complete (a dataset being built)."""
    path = Path(path)
    check_target(path)
    tmp = temporary_name(path)
    try:
        with _open_new(tmp) as handle:
            yield handle
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        check_target(path)
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):  # disk full, read-only
            raise StorageError(f"cannot write {path}: {why(exc, path.parent)}") from None
        raise
    if sync:
        fsync_dir(path.parent)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Fill a temporary folder beside `path`, fsync every file in it, then put it in place of
    `path` (an older `path` is removed only once the new one is complete). `path` must be a folder
    (not a link to one) or a new path."""
    path = Path(path)
    with suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISDIR(mode):
            raise StorageError(f"refusing to write folder {path}: it is {kind_of(mode)}")
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


def atomic_write_bytes(path: Path, data: bytes, *, sync: bool = True) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    with atomic_file(path, sync=sync) as handle:
        handle.write(data)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def make_folder(folder: Path) -> None:
    """Create `folder` (and its parents); StorageError says why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create folder {folder}: {exc.strerror or exc}") from None


def atomic_write_figure(figure: Any, path: Path, **options: Any) -> Path:
    """Save a matplotlib figure to `path` through the one writer (format from the suffix)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **options)
    return atomic_write_bytes(path, buffer.getvalue())
