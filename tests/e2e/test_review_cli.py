"""`leukoscope review` as a user runs it: serves the page; bad options are one error line."""

from __future__ import annotations

import http.cookiejar
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ..cli_helpers import clean_environ
from ..integration.review_helpers import finished_sample


def _env() -> dict[str, str]:
    return clean_environ()


def _review(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leukoscope", "review", *args],
        capture_output=True, text=True, timeout=60, env=_env(), cwd=cwd, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--db", "missing.sqlite"),
            "error: results database missing.sqlite not found (pass --db)",
        ),
        (("--db", "r.sqlite", "--host", "0.0.0.0"), "error: --host 0.0.0.0 is reachable from"),
        (("--db", "r.sqlite", "--port", "70000"), "error: --port must be 1-65535, got 70000"),
        (("--db", "r.sqlite", "--host", "not a host"), "error: --host must be an IP address"),
        (
            ("--db", "r.sqlite", "--host", "0.0.0.0", "--token", "short"),
            "error: the access token must have at least 16",
        ),
    ],
)
def test_bad_options_are_one_error_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    finished_sample(tmp_path / "r.sqlite")
    result = _review(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    finished_sample(tmp_path / "r.sqlite")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _review("--db", "r.sqlite", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def _login_and_list(base: str) -> str:
    """Log in as Ann Lee through the login page's CSRF token and API; the sample list page."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(f"{base}/", timeout=5) as answer:  # redirected to the login page
        login_page = answer.read().decode()
    found = re.search(r'data-csrf="([^"]+)"', login_page)
    assert found is not None and 'id="login"' in login_page
    login = urllib.request.Request(
        f"{base}/api/login",
        data=json.dumps({"user": "Ann Lee", "password": "a long password"}).encode(),
        headers={"Content-Type": "application/json", "X-CSRF-Token": found.group(1)},
    )
    with opener.open(login, timeout=20) as answer:
        assert json.loads(answer.read()) == {"user": "Ann Lee"}
    with opener.open(f"{base}/", timeout=5) as answer:
        return str(answer.read().decode())


def test_review_serves_the_sample_list_and_stops_on_interrupt(tmp_path: Path) -> None:
    finished_sample(tmp_path / "r.sqlite", "S-7")
    added = subprocess.run(
        [sys.executable, "-m", "leukoscope", "user", "add", "Ann Lee", "--db", "r.sqlite",
         "--password-stdin"],
        input="a long password\n", capture_output=True, text=True, timeout=60, env=_env(),
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "leukoscope", "review", "--db", "r.sqlite", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline, page = time.monotonic() + 30, ""
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5):
                    page = _login_and_list(f"http://127.0.0.1:{port}")
            except OSError:
                time.sleep(0.2)
        assert '<tr data-sample="S-7">' in page and 'id="user">Ann Lee<' in page
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert f"review r.sqlite at http://127.0.0.1:{port}/" in stderr
    assert "Traceback" not in stderr
