"""Hostile inputs at the CLI: output paths that are not regular files, oversized requests, lying
metadata; each is one `error:` line and exit status 2, never a traceback."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from .test_cli_trust import leukoscope, one_error_line, stored_sample


@pytest.mark.parametrize("command", [["runs"], ["samples"], ["cells", "S-9"]])
def test_out_dev_full_is_refused_as_a_device(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "r.sqlite"
    stored_sample(db)
    before = os.lstat("/dev/full")
    args = [*command, "--db", str(db), "--format", "csv", "--out", "/dev/full"]
    line = one_error_line(leukoscope(tmp_path, *args))
    assert "/dev/full: it is a character device" in line
    after = os.lstat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_out_fifo_and_symlink_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    stored_sample(db)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    line = one_error_line(
        leukoscope(tmp_path, "samples", "--db", str(db), "--format", "csv", "-o", str(fifo))
    )
    assert f"{fifo}: it is a FIFO" in line
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "elsewhere.csv")
    line = one_error_line(
        leukoscope(tmp_path, "runs", "--db", str(db), "--format", "json", "-o", str(link))
    )
    assert f"{link}: it is a symbolic link" in line and not (tmp_path / "elsewhere.csv").exists()


BCCD = Path(__file__).resolve().parents[1] / "data" / "bccd"


def refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: object
) -> str:
    """Run in-process; the one `error:` line (exit status 2, nothing else on stderr)."""
    from tests.cli_helpers import run_cli

    monkeypatch.setenv("LEUKOSCOPE__PIPELINE__LIVE_ENDPOINT", "")
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    capsys.readouterr()
    code = run_cli(monkeypatch, *args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (code, err)
    return err


def test_dataset_build_refuses_dev_zero_and_labels_that_are_all_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    acquisition = str(BCCD / "bccd-01")
    out = tmp_path / "d"
    err = refused(monkeypatch, capsys, "dataset", "build", acquisition, "--labels", "/dev/zero",
                  "--out", out)  # fmt: skip
    assert "/dev/zero: not a regular file" in err
    others = tmp_path / "others.csv"
    others.write_text("sample,fov,x_px,y_px,class\nbccd-01,0,10,10,OTHER\nbccd-01,0,50,50,other\n")
    err = refused(monkeypatch, capsys, "dataset", "build", acquisition, "--labels", others,
                  "--out", out)  # fmt: skip
    assert "no white-cell labels" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["others.csv"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dataset", "OUT", "--out-px", "100000"], "--out-px must be 2-1024 px, got 100000"),
        (["dataset", "OUT", "--crop-um", "100000"], "the limit is 1024 px"),
        (["dataset", "OUT", "--cells", "999999", "--out-px", "1024"], "the limit is 32 GiB"),
        (["acquisition", "OUT", "--sample", "S-1", "--frame-size", "100000"],
         "--frame-size must be 32-4096 px for the simulator, got 100000"),
        (["acquisition", "OUT", "--sample", "S-1", "--frame-size", "4096", "--fields", "600"],
         "the limit is 32 GiB"),
    ],
)  # fmt: skip
def test_simulate_requests_are_bounded_before_rendering(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "out"
    err = refused(monkeypatch, capsys, "simulate", *[str(out) if a == "OUT" else a for a in args])
    assert message in err
    assert not any(out.iterdir()) if out.exists() else True


def test_send_checks_its_paths_before_waiting_for_a_server(tmp_path: Path) -> None:
    import time

    from ..integration.pipeline_helpers import free_base_port

    began = time.monotonic()
    connect = f"tcp://127.0.0.1:{free_base_port()}"
    line = one_error_line(
        leukoscope(tmp_path, "send", str(tmp_path / "nope"), "--connect", connect)
    )
    assert "nothing to send" in line and "nope" in line
    assert time.monotonic() - began < 20  # no wait for the (absent) server
