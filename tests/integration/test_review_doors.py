"""Doors of the review server against a real uvicorn: a huge body is refused before it is read,
an index beyond any field is a 400 (never a 500), and reading a sample changes nothing."""

from __future__ import annotations

import http.client
import json
import urllib.request
from pathlib import Path

from leukoscope.results.review_store import ReviewStore

from .review_helpers import LiveApp, finished_sample

SAMPLE = "S-1"


def _raw_post(live: LiveApp, path: str, headers: dict[str, str], chunks: list[bytes]) -> int:
    """A POST sent by hand (declared length, or chunked) with the logged-in client's cookie."""
    jar = next(
        h.cookiejar
        for h in live._opener.handlers
        if isinstance(h, urllib.request.HTTPCookieProcessor)
    )
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=20)
    connection.putrequest("POST", path)
    for name, value in {**headers, "X-CSRF-Token": live.csrf, "Cookie": cookie,
                        "Content-Type": "application/json"}.items():  # fmt: skip
        connection.putheader(name, value)
    connection.endheaders()
    try:
        for chunk in chunks:
            connection.send(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before taking everything: that is the point
    status = connection.getresponse().status
    connection.close()
    return status


def test_a_huge_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE)
    path = f"/api/sample/{run}/{SAMPLE}/release"
    with LiveApp(database, user="Ann Lee") as live:
        # 400 MiB announced, a few bytes sent: refused on the header alone
        assert _raw_post(live, path, {"Content-Length": str(400 << 20)}, [b"{}"]) == 413
        # chunked, no length: refused once it passes the limit (1 MiB offered)
        piece = b"x" * 65536
        chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 16 + [b"0\r\n\r\n"]
        assert _raw_post(live, path, {"Transfer-Encoding": "chunked"}, chunks) == 413
        answer = live.post(path, {"version": 0, "reason": "x" * 70_000})
        assert answer.status_code == 413 and "over 64 KiB" in answer.json()["error"]
        assert live.get(f"/api/sample/{run}/{SAMPLE}").status_code == 200  # still serving


def test_indices_beyond_any_field_are_a_clear_400(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE)
    with LiveApp(database, user="Ann Lee") as live:
        for fov in ("99999999999999999999999", "-1", "9223372036854775808"):
            answer = live.post(
                f"/api/sample/{run}/{SAMPLE}/cell/{fov}/0", {"label": "NEU", "version": 0}
            )
            assert answer.status_code == 400, answer.body
            assert "fov" in answer.json()["error"]
            picture = live.get(f"/img/{run}/{SAMPLE}/{fov}/0/composite.png")
            assert picture.status_code == 400


def test_reading_a_sample_does_not_open_its_review(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE)
    with LiveApp(database, user="Ann Lee") as live:
        state = live.get(f"/api/sample/{run}/{SAMPLE}").json()
        page = live.get(f"/sample/{run}/{SAMPLE}")
        assert page.status_code == 200 and state["state"] == "open" and state["version"] == 0
        assert len(state["cells"]) == 10  # the counted cells, as the review would start
        with ReviewStore(database, read_only=True) as reviews:
            assert reviews.state(run, SAMPLE) is None  # nothing written by reading
        first = state["cells"][0]
        edit = live.post(
            f"/api/sample/{run}/{SAMPLE}/cell/{first['fov']}/{first['cell_index']}",
            {"label": "BAS" if first["label"] != "BAS" else "NEU", "version": 0},
        )
        assert edit.status_code == 200 and json.loads(edit.body)["version"] == 1
        with ReviewStore(database, read_only=True) as reviews:
            assert reviews.state(run, SAMPLE) is not None  # the first change opened it
