"""The one writer (`leukoscope.atomic`): a regular file or a new path, atomically; anything else is
refused with one line naming the path and what it is, before a byte is written."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from leukoscope import atomic
from leukoscope.atomic import atomic_write_bytes, atomic_write_text
from leukoscope.errors import StorageError
from leukoscope.spreadsheet import csv_text, safe_cell

from ..fakes.confined import full_disk_reason, on_small_disk, python
from ..fakes.full_disk import open_full


def test_a_new_path_and_a_regular_file_are_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    atomic_write_text(target, "a\n")
    atomic_write_text(target, "b\n")
    assert target.read_text() == "b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary left


def test_a_symbolic_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("keep")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with pytest.raises(StorageError, match=r"link\.csv: it is a symbolic link"):
        atomic_write_text(link, "x")
    assert link.is_symlink() and real.read_text() == "keep"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(StorageError, match=r"pipe: it is a FIFO"):
        atomic_write_bytes(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_socket_and_a_folder_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(StorageError, match="it is a socket"):
            atomic_write_bytes(path, b"x")
    finally:
        server.close()
    with pytest.raises(StorageError, match="it is a folder"):
        atomic_write_bytes(tmp_path, b"x")


def test_dev_full_is_refused_as_a_device_before_anything_is_written() -> None:
    before = os.lstat("/dev/full")
    with pytest.raises(StorageError, match="/dev/full: it is a character device"):
        atomic_write_bytes(Path("/dev/full"), b"x")
    after = os.lstat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert not list(Path("/dev").glob(".full.*.tmp"))


WRITE_A_MEBIBYTE = """
import sys
from pathlib import Path
from leukoscope.atomic import atomic_write_bytes
from leukoscope.errors import StorageError
folder = Path(sys.argv[1])
try:
    atomic_write_bytes(folder / "big.csv", b"x" * (1 << 20))
except StorageError as exc:
    print(f"error: {exc}")
print("left:", sorted(p.name for p in folder.iterdir()))
"""


def test_disk_full_on_a_tiny_disk_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """1 MiB onto a 64 KiB tmpfs (in a mount namespace of its own, any user; else a 64 KiB limit
    on file sizes, tests/fakes/confined.py)."""
    small = tmp_path / "small"
    small.mkdir()
    argv = on_small_disk(python(WRITE_A_MEBIBYTE, str(small)), small, "64k")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    error, left = done.stdout.splitlines()  # the error is one line
    assert error.startswith(f"error: cannot write {small / 'big.csv'}: "), error
    assert full_disk_reason() in error, error
    assert left == "left: []"  # no temporary file left behind


def test_disk_full_through_a_named_fake_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    monkeypatch.setattr(atomic, "_open_new", open_full)
    with pytest.raises(StorageError, match=r"cannot write .*out\.csv: No space left"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_formula_like_cells_are_neutralised(text: str) -> None:
    assert safe_cell(text) == "'" + text
    assert csv_text(["a", "b"], [[text, -1.5]]).splitlines()[1].startswith("'")


def test_plain_cells_and_numbers_are_kept() -> None:
    assert safe_cell("NEU") == "NEU" and safe_cell(-3) == -3 and safe_cell(None) is None
    assert csv_text(["n"], [[-1.5]]) == "n\n-1.5\n"


def test_every_people_csv_goes_through_the_neutraliser() -> None:
    from leukoscope.report.tables import render_csv

    text = render_csv([{"sample_id": "S-1", "flag_reason": "=HYPERLINK(\"x\")"}],
                      ("sample_id", "flag_reason"))  # fmt: skip
    assert text.splitlines()[1] == 'S-1,"\'=HYPERLINK(""x"")"'
