"""A full disk and read-only media for the tests, for any user, root or not.

A command (argv) runs in a child process in a mount namespace of its own: `unshare --user
--map-root-user --mount` (any user where user namespaces are allowed, root too), else `unshare
--mount` (root). There a tmpfs of a given size, or a read-only bind mount of a folder onto itself,
is made before the command starts; it vanishes with the command and nobody else sees it. Where no
namespace can be made, a full disk is a file-size limit instead (`RLIMIT_FSIZE`, so a write fails
with EFBIG, "File too large"), and read-only media cannot be made: the test fails and says why, it
does not skip.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

NAMESPACES = (("unshare", "--user", "--map-root-user", "--mount"), ("unshare", "--mount"))
NO_SPACE = "No space left on device"  # ENOSPC: a full tmpfs
TOO_LARGE = "File too large"  # EFBIG: over the file-size limit
_MOUNT_TMPFS = 'mount -t tmpfs -o "size=$1" tmpfs "$2" && shift 2 && exec "$@"'
_MOUNT_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
_SIZE_LIMITED = (
    "import os, resource, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the limit: EFBIG, no signal\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)
_UNITS = {"k": 1 << 10, "m": 1 << 20}


@functools.cache
def _namespace() -> tuple[tuple[str, ...], str]:
    """The unshare prefix that can mount here (empty if none) and why the others could not."""
    reasons = []
    with tempfile.TemporaryDirectory() as probe:
        for prefix in NAMESPACES:
            argv = [*prefix, "sh", "-c", _MOUNT_TMPFS, "sh", "64k", probe, "true"]
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                reasons.append(f"{' '.join(prefix)}: {exc}")
                continue
            if done.returncode == 0:
                return prefix, ""
            reasons.append(f"{' '.join(prefix)}: {done.stderr.strip() or done.returncode}")
    return (), "; ".join(reasons)


def full_disk_reason() -> str:
    """What a write past the end says here: NO_SPACE (a real full tmpfs) or TOO_LARGE (a limit)."""
    return NO_SPACE if _namespace()[0] else TOO_LARGE


def on_small_disk(argv: Sequence[str], mount: Path, size: str) -> list[str]:
    """`argv` run with a fresh tmpfs of `size` ("64k", "1m") on the existing folder `mount`; where no
    namespace can be made, `mount` stays as it is and no file may grow past `size`."""
    prefix, _ = _namespace()
    if prefix:
        return [*prefix, "sh", "-c", _MOUNT_TMPFS, "sh", size, str(mount), *argv]
    limit = int(size[:-1]) * _UNITS[size[-1].lower()]
    return [sys.executable, "-c", _SIZE_LIMITED, str(limit), *argv]


def on_read_only(argv: Sequence[str], folder: Path) -> list[str]:
    """`argv` run with `folder`, and everything under it, on read-only media (EROFS)."""
    prefix, why = _namespace()
    if not prefix:
        pytest.fail(f"cannot make read-only media here: no mount namespace ({why})")
    return [*prefix, "sh", "-c", _MOUNT_READ_ONLY, "sh", str(folder), *argv]


def python(code: str, *args: str) -> list[str]:
    """This interpreter running `code` with `args` (sys.argv[1:])."""
    return [sys.executable, "-c", code, *args]
