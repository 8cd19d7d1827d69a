"""The CLI's doors: sample ids, existing acquisitions, keys, the rig default; one `error:` line."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leukoscope.acquisition_files import storage
from leukoscope.cli import app

from ..cli_helpers import clean_environ
from ..fakes.confined import NO_SPACE, full_disk_reason, on_read_only, on_small_disk
from ..integration.pipeline_helpers import free_base_port


def leukoscope(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    confine: Callable[[list[str]], list[str]] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The installed command as a user runs it (default config, no LEUKOSCOPE_* overrides);
    `confine` wraps its command line (a full disk, read-only media: tests/fakes/confined.py)."""
    environ = clean_environ()
    environ.update(
        LEUKOSCOPE__RIG__CAMERA__WIDTH="128", LEUKOSCOPE__RIG__CAMERA__HEIGHT="96", COLUMNS="120"
    )
    environ.update(env or {})
    argv = [sys.executable, "-m", "leukoscope", *args]
    return subprocess.run(
        confine(argv) if confine else argv,
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        cwd=cwd,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def small_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__WIDTH", "128")
    monkeypatch.setenv("LEUKOSCOPE__RIG__CAMERA__HEIGHT", "96")
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)


@pytest.mark.parametrize("command", ["acquire", "run", "report"])
def test_path_like_sample_id_is_refused_and_nothing_escapes(tmp_path: Path, command: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = {
        "acquire": ["acquire", "--simulate", "--fields", "1", "--sample", "../escaped"],
        "run": ["run", "--simulate", "--sample", "../escaped"],
        "report": ["report", "../escaped"],
    }[command]
    line = one_error_line(leukoscope(work, *args))
    assert "sample id '../escaped' is not allowed" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert list(work.iterdir()) == []


def test_acquire_refuses_an_existing_acquisition_then_replaces_it(
    small_frames: None, tmp_path: Path
) -> None:
    out = tmp_path / "S-1"
    first = ["acquire", "--simulate", "--sample", "S-1", "--fields", "4", "--out", str(out)]
    assert CliRunner().invoke(app, first).exit_code == 0
    again = ["acquire", "--simulate", "--sample", "S-1", "--fields", "2", "--out", str(out)]
    refused = CliRunner().invoke(app, again)
    assert "--replace" in str(refused.exception)
    assert storage.list_fields(out) == [0, 1, 2, 3]  # the first acquisition is untouched
    replaced = CliRunner().invoke(app, [*again, "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert storage.list_fields(out) == [0, 1]  # no field of the old sample is left behind
    assert storage.read_acquisition_meta(out).fields == 2


def test_refused_acquisition_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "acquisitions" / "S-2").mkdir(parents=True)
    storage.field_path(tmp_path / "acquisitions" / "S-2", 5).write_bytes(b"old")
    line = one_error_line(
        leukoscope(tmp_path, "acquire", "--simulate", "--sample", "S-2", "--fields", "1")
    )
    assert "not empty" in line and "--replace" in line


def test_keys_generate_twice_needs_force(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert leukoscope(tmp_path, "keys", "generate", str(keys)).returncode == 0
    before = (keys / "server.key_secret").read_bytes()
    line = one_error_line(leukoscope(tmp_path, "keys", "generate", str(keys)))
    assert "--force" in line
    assert (keys / "server.key_secret").read_bytes() == before
    assert leukoscope(tmp_path, "keys", "generate", str(keys), "--force").returncode == 0
    assert (keys / "server.key_secret").read_bytes() != before


def test_run_without_a_rig_is_an_error_not_a_simulation(tmp_path: Path) -> None:
    line = one_error_line(leukoscope(tmp_path, "run", "--sample", "REAL-001"))
    assert "no rig configured" in line and "--simulate" in line
    assert not (tmp_path / "leukoscope.sqlite").exists()


def stored_sample(db: Path) -> None:
    from leukoscope.results.store import ResultStore

    with ResultStore(db) as store:
        run_id = store.start_run()
        store.start_sample(run_id, "S-9", target_cells=0, fields_total=1)
        store.add_field(run_id, "S-9", 0, 0)
        store.finish_sample(run_id, store.summary(run_id, "S-9"))


@pytest.mark.parametrize("where", ["missing-folder", "onto-a-folder"])
def test_report_out_that_cannot_be_written_is_one_line(tmp_path: Path, where: str) -> None:
    db = tmp_path / "r.sqlite"
    stored_sample(db)
    out = tmp_path / "no" / "such" / "r.html" if where == "missing-folder" else tmp_path
    line = one_error_line(leukoscope(tmp_path, "report", "S-9", "--db", str(db), "--out", str(out)))
    assert str(out) in line


def test_config_file_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(leukoscope(tmp_path, "--config", str(tmp_path), "config", "show"))
    assert "is a folder" in line


def test_serve_on_a_port_in_use_is_one_line_and_exits(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bind = f"tcp://127.0.0.1:{port}"
        result = leukoscope(tmp_path, "serve", "--bind", bind, "--db", "r.sqlite")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"cannot listen on {bind}" in errors[0], result.stderr


def test_bind_past_the_last_port_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(
        leukoscope(tmp_path, "serve", "--bind", "tcp://127.0.0.1:70000", "--db", "r.sqlite")
    )
    assert "65535" in line


@pytest.mark.parametrize("command", ["send", "worker"])
def test_send_and_worker_without_a_server_say_so_and_give_up(tmp_path: Path, command: str) -> None:
    from leukoscope.instrument.simulator.acquisition import generate_acquisition

    address = f"tcp://127.0.0.1:{free_base_port()}"
    saved = tmp_path / "S-1"  # send checks its paths first: a real one, so it waits for serve
    generate_acquisition(saved, "S-1", 1, frame_shape=(32, 32), cells_per_field=0.0)
    args = {
        "send": ["send", str(saved), "--connect", address],
        "worker": ["worker", "segment", "--connect", address],
    }[command]
    env_timeout = {"LEUKOSCOPE__PIPELINE__CONNECT_TIMEOUT_S": "5"}
    result = leukoscope(tmp_path, *args, env=env_timeout)
    assert result.returncode == 2, result.stderr
    assert "(Ctrl-C to stop)" in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "no leukoscope serve answered" in errors[0], result.stderr


@pytest.mark.timeout(300)
def test_sigterm_during_run_stores_terminated_and_the_run_resumes(tmp_path: Path) -> None:
    import signal
    import time

    from leukoscope.results.store import ResultStore

    environ = clean_environ()
    environ.update(
        LEUKOSCOPE__RIG__CAMERA__WIDTH="256",
        LEUKOSCOPE__RIG__CAMERA__HEIGHT="256",
        LEUKOSCOPE__CLASSIFIER__THREADS="1",
    )
    args = ["run", "--simulate", "--sample", "T-1", "--cells", "0", "--max-fields", "12"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "leukoscope", *args],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = tmp_path / "acquisitions" / "T-1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.is_dir() and len(storage.list_fields(folder)) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr
    resume = "leukoscope run --sample T-1 --resume --simulate --cells 0 --max-fields 12"
    assert "terminated: " in stderr and f"resume with: {resume}" in stderr, stderr
    stands = re.search(r"saved in acquisitions/T-1, (\d+) analysed \((\d+) cells\), stored as "
                       r"incomplete; resume with", stderr)  # fmt: skip
    assert stands is not None, stderr
    assert "leukoscope batch acquisitions/T-1" in stderr, stderr
    with ResultStore(tmp_path / "leukoscope.sqlite", read_only=True) as store:
        (row,) = store.samples()
    assert (row["status"], row["reason"]) == ("incomplete", "terminated")
    saved = storage.list_fields(folder)
    assert storage.read_acquisition_meta(folder).fields == len(saved) >= 2
    assert int(stands.group(1)) <= len(saved)  # a field is analysed only once it is saved
    assert len(saved) < 12, "the run ended before SIGTERM reached it"
    kept = {f: storage.field_path(folder, f).read_bytes() for f in saved}

    done = subprocess.run(
        [sys.executable, "-m", "leukoscope", *resume.split()[1:]],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=200, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "sample T-1 — complete" in done.stdout, done.stdout
    assert storage.list_fields(folder) == list(range(12))
    assert storage.read_acquisition_meta(folder).fields == 12
    assert {f: storage.field_path(folder, f).read_bytes() for f in saved} == kept
    with ResultStore(tmp_path / "leukoscope.sqlite", read_only=True) as store:
        first, second = store.runs()
        rows = {r["run_id"]: r for r in store.samples()}
        summary = store.summary(second["run_id"], "T-1")
    assert rows[first["run_id"]]["reason"] == "terminated"
    assert (summary.status.value, summary.fields_total, summary.fields_done) == ("complete", 12, 12)


def test_resume_with_nothing_to_resume_is_one_line(tmp_path: Path) -> None:
    result = leukoscope(tmp_path, "run", "--simulate", "--sample", "N-1", "--resume")
    assert "nothing to resume" in one_error_line(result)
    result = leukoscope(tmp_path, "run", "--simulate", "--sample", "N-1", "--resume", "--replace")
    assert "--replace deletes them" in one_error_line(result)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """An empty folder: a 1 MiB disk or read-only media for the command run on it."""
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("command", ["acquire", "run"])
def test_disk_full_during_acquire_or_run_is_one_line(
    media: Path, tmp_path: Path, command: str
) -> None:
    """A 1 MiB tmpfs in a mount namespace of its own (any user); else a 1 MiB limit on file sizes."""
    out = ["--out", str(media / "S-1")] if command == "acquire" else ["--out", str(media)]
    fields = ["--fields", "5"] if command == "acquire" else ["--cells", "0", "--max-fields", "5"]
    args = [command, "--simulate", "--sample", "S-1", *fields, *out]
    env = {
        "LEUKOSCOPE__RIG__CAMERA__WIDTH": "512",
        "LEUKOSCOPE__RIG__CAMERA__HEIGHT": "512",
        "LEUKOSCOPE__CLASSIFIER__THREADS": "1",
    }
    confine = functools.partial(on_small_disk, mount=media, size="1m")
    result = leukoscope(tmp_path, *args, env=env, confine=confine)  # also a progress bar
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"cannot write {media / 'S-1'}" in errors[0], errors
    if full_disk_reason() == NO_SPACE:  # a size limit is a short write: the disk is not full
        assert "no space left on the device" in errors[0].lower(), errors


@pytest.mark.timeout(300)
def test_read_only_folders_are_one_line(media: Path, tmp_path: Path) -> None:
    read_only = functools.partial(on_read_only, folder=media)
    db = tmp_path / "r.sqlite"
    stored_sample(db)
    dataset = tmp_path / "cells"
    composition = "NEU=20,LYM=20,MO=20,EOS=20,BAS=20"
    made = leukoscope(tmp_path, "simulate", "dataset", str(dataset), "--cells", "20", "--out-px",
                      "32", "--composition", composition)  # fmt: skip
    assert made.returncode == 0, made.stderr
    commands = [
        ["config", "init", str(media / "leukoscope.toml")],
        ["keys", "generate", str(media / "keys")],
        ["acquire", "--simulate", "--sample", "S-1", "--fields", "1", "--out", str(media / "S")],
        ["simulate", "acquisition", str(media / "A"), "--sample", "A-1", "--fields", "1"],
        ["report", "S-9", "--db", str(db), "--out", str(media / "r.html")],
    ]
    for args in commands:
        line = one_error_line(leukoscope(tmp_path, *args, confine=read_only))
        assert "Read-only file system" in line, (args, line)
    size = {"LEUKOSCOPE__RIG__CAMERA__WIDTH": "512", "LEUKOSCOPE__RIG__CAMERA__HEIGHT": "512"}
    calibrate = ["calibrate", "--simulate", "--fields", "2", "--write", str(media / "l.toml")]
    line = one_error_line(leukoscope(tmp_path, *calibrate, env=size, confine=read_only))
    assert "Read-only file system" in line, line
    train = ["train", str(dataset), "--out", str(media / "run"), "--epochs", "1", "--folds",
             "2", "--width", "0.5", "--input-size", "32"]  # fmt: skip
    trained = leukoscope(tmp_path, *train, confine=read_only)  # also says what it trains
    errors = [line for line in trained.stderr.splitlines() if line.startswith("error: ")]
    assert trained.returncode == 2 and "Traceback" not in trained.stderr, trained.stderr
    assert len(errors) == 1 and "Read-only file system" in errors[0], trained.stderr


def test_report_reads_a_results_database_on_read_only_media(media: Path, tmp_path: Path) -> None:
    stored_sample(media / "r.sqlite")  # WAL mode; SQLite cannot make its index file later
    out = tmp_path / "r.json"
    args = ["report", "S-9", "--db", str(media / "r.sqlite"), "--format", "json", "--out"]
    result = leukoscope(
        tmp_path, *args, str(out), confine=functools.partial(on_read_only, folder=media)
    )
    assert result.returncode == 0, result.stderr
    assert '"sample_id": "S-9"' in out.read_text()
