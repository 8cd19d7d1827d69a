"""`run` and `batch` say where they stand: progress to the target, where the fields go, the final
table once, the next commands; `batch --strict` fails a sample that ended below its target.

`run` is watched in a real pseudo-terminal and its output replayed on a terminal emulator (pyte),
so the test sees the screen a user sees, not the bytes of every live frame."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pyte
import pytest

from ..integration.pipeline_helpers import small_acquisition, untrained_checkpoint

FRAME = 512
COLUMNS, ROWS = 120, 60


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


def _env(model: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEUKOSCOPE") or k == "LEUKOSCOPE__PIPELINE__LIVE_ENDPOINT"
    }
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    env.update(
        LEUKOSCOPE__CLASSIFIER__MODEL_PATH=str(model),
        LEUKOSCOPE__CLASSIFIER__THREADS="1",
        LEUKOSCOPE__RIG__CAMERA__WIDTH=str(FRAME),
        LEUKOSCOPE__RIG__CAMERA__HEIGHT=str(FRAME),
        TERM="xterm-256color",
    )
    return env


def in_terminal(cwd: Path, model: Path, *args: str) -> tuple[int, bytes]:
    """Run `leukoscope ARGS` on a pseudo-terminal of COLUMNS x ROWS; exit code and every byte."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "leukoscope", *args],
        stdin=slave, stdout=slave, stderr=slave, env=_env(model), cwd=cwd, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout=300), b"".join(chunks)


def screen_of(data: bytes) -> list[str]:
    """What the terminal shows once every byte is drawn."""
    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.ByteStream(screen)
    stream.feed(data.replace(b"\n", b"\r\n") if b"\r\n" not in data else data)
    return [line.rstrip() for line in screen.display]


def test_run_shows_progress_then_the_final_table_once_and_what_to_run_next(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The live endpoint's port is taken: the warning it causes mid-display must not leave a frame.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    monkeypatch.setenv("LEUKOSCOPE__PIPELINE__LIVE_ENDPOINT", f"tcp://127.0.0.1:{port}")
    try:
        code, data = in_terminal(
            tmp_path, model, "run", "--simulate", "--sample", "pty", "--cells", "20", "--seed", "5",
        )  # fmt: skip
    finally:
        taken.close()
    text = data.decode("utf-8", errors="replace")
    assert code == 0, text
    assert text.count(f"live summaries not published on tcp://127.0.0.1:{port}") == 1, text
    # while it ran: progress toward the target and where the fields are saved
    assert "/20 · fields " in text and "ETA" in text
    assert f"saving fields to {Path('acquisitions') / 'pty'}" in text
    lines = screen_of(data)
    shown = "\n".join(lines)
    titles = [line for line in lines if "sample pty — complete" in line]
    assert len(titles) == 1, shown  # the final table, once; no live frame left behind
    assert not any("ETA" in line for line in lines), shown
    assert "cells counted 20" in shown
    assert any(line.strip() == "leukoscope report pty" for line in lines), shown
    assert any(line.strip() == "leukoscope batch acquisitions/pty" for line in lines), shown
    assert "Traceback" not in text


def test_batch_says_a_sample_ended_below_target_and_strict_fails_it(
    tmp_path: Path, model: Path
) -> None:
    folder = small_acquisition(tmp_path / "acq", "short", 2, seed=3)
    db = tmp_path / "r.sqlite"
    args = ["batch", str(folder), "--cells", "500", "--db", str(db)]
    env = {**_env(model), "COLUMNS": "200"}
    plain = subprocess.run(
        [sys.executable, "-m", "leukoscope", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    warning = [line for line in plain.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1, plain.stderr
    assert "sample short ended below its target" in warning[0] and "of 500 cells" in warning[0]
    assert f"leukoscope report short --db {db}" in plain.stdout
    strict = subprocess.run(
        [sys.executable, "-m", "leukoscope", *args, "--strict"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    assert strict.returncode == 3, strict.stderr
    assert "ended below its target" in strict.stderr
    # reaching the target is not a failure, strict or not
    enough = subprocess.run(
        [sys.executable, "-m", "leukoscope", "batch", str(folder), "--cells", "3", "--db", str(db),
         "--strict"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    assert enough.returncode == 0, enough.stderr
    assert "warning:" not in enough.stderr
