"""The review web app through real HTTP: uvicorn on a loopback port, urllib as the client, logged
in as a real account (the login itself: test_review_login.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore

from .release_helpers import give_evidence
from .review_helpers import TILE, LiveApp, add_user, finished_sample

SAMPLE = "S-1"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LiveApp, str, Path]]:
    database = tmp_path / "results.sqlite"
    run_id, _ = finished_sample(database, SAMPLE)
    give_evidence(database, run_id, SAMPLE)  # a validated model on this rig: it may be released
    with LiveApp(database, user="Ann Lee", allowed_hosts=["127.0.0.1"]) as live:
        yield live, run_id, database


def test_list_page_and_review_page(served: tuple[LiveApp, str, Path]) -> None:
    client, run, _ = served
    index = client.get("/")
    assert index.status_code == 200 and f'<tr data-sample="{SAMPLE}">' in index.text
    assert "not reviewed" in index.text
    assert "default-src 'self'" in index.headers["content-security-policy"]
    page = client.get(f"/sample/{run}/{SAMPLE}")
    assert page.status_code == 200
    assert f'data-csrf="{client.csrf}"' in page.text
    assert client.get("/static/review.js").text.startswith("// leukoscope review page")
    embedded = page.text.split('<script type="application/json" id="initial-state">')[1]
    state = json.loads(embedded.split("</script>")[0])
    assert state == client.get(f"/api/sample/{run}/{SAMPLE}").json()  # no round trip needed


def test_a_running_sample_cannot_be_reviewed(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    with ResultStore(database) as store:
        run = store.start_run()
        store.start_sample(run, "S-2")
    with LiveApp(database, user="Ann Lee") as client:
        page = client.get(f"/sample/{run}/S-2")
        assert page.status_code == 200 and "initial-state" not in page.text
        answer = client.get(f"/api/sample/{run}/S-2")
        assert answer.status_code == 409 and "still running" in answer.json()["error"]


def test_reclassify_updates_the_differential(served: tuple[LiveApp, str, Path]) -> None:
    client, run, database = served
    state = client.get(f"/api/sample/{run}/{SAMPLE}").json()
    assert state["state"] == "open" and len(state["cells"]) == 10
    assert state["reviewed"] == state["original"]
    assert [c["flagged"] for c in state["cells"][:4]] == [True] * 4  # flagged first
    cell = next(c for c in state["cells"] if c["original"] == "NEU")
    answer = client.post(
        f"/api/sample/{run}/{SAMPLE}/cell/{cell['fov']}/{cell['cell_index']}",
        {"label": "BAS", "version": cell["version"]},
    )
    assert answer.status_code == 200, answer.text
    new = answer.json()
    counts = {d["cell_class"]: d["count"] for d in new["reviewed"]}
    before = {d["cell_class"]: d["count"] for d in state["original"]}
    assert counts == {**before, "NEU": before["NEU"] - 1, "BAS": before["BAS"] + 1}
    assert new["original"] == state["original"] and new["version"] == 1
    with ReviewStore(database, read_only=True) as reviews:
        assert [(a.from_label, a.to_label) for a in reviews.audit(run, SAMPLE)] == [("NEU", "BAS")]
    # the same edit made by another reviewer on the old version is stale: 409, one clear line
    add_user(database, "Bo")
    bo = client.client()
    assert bo.login("Bo").status_code == 200
    stale = bo.post(
        f"/api/sample/{run}/{SAMPLE}/cell/{cell['fov']}/{cell['cell_index']}",
        {"label": "MO", "version": cell["version"]},
    )
    assert stale.status_code == 409
    assert "changed by Ann Lee to BAS after you loaded it" in stale.json()["error"]


def test_release_locks_and_reopen_needs_a_reason(served: tuple[LiveApp, str, Path]) -> None:
    client, run, _ = served
    state = client.get(f"/api/sample/{run}/{SAMPLE}").json()
    released = client.post(f"/api/sample/{run}/{SAMPLE}/release", {"version": 0})
    assert released.status_code == 200 and released.json()["state"] == "released"
    cell = state["cells"][0]
    locked = client.post(
        f"/api/sample/{run}/{SAMPLE}/cell/{cell['fov']}/{cell['cell_index']}",
        {"label": "MO", "version": 0},
    )
    assert locked.status_code == 409 and "released by Ann Lee" in locked.json()["error"]
    version = released.json()["version"]
    no_reason = client.post(f"/api/sample/{run}/{SAMPLE}/reopen", {"version": version})
    assert no_reason.status_code == 400 and no_reason.json() == {"error": "reason: Field required"}
    assert "released by Ann Lee" in client.get("/").text


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/cell/0/0", {"label": "PLT", "version": 0}, 400, "label 'PLT'"),
        ("/cell/0/0", {"label": "NEU", "version": 0, "reviewer": "Bo"}, 400, "reviewer: Extra"),
        ("/cell/0/0", {"label": "NEU", "version": -1}, 400, "version:"),
        ("/cell/0/0", {"label": "NEU", "version": 0, "x": 1}, 400, "x:"),
        ("/cell/7/7", {"label": "NEU", "version": 0}, 400, "not one of"),
        ("/release", {"reviewer": "Bo", "version": 0}, 400, "reviewer: Extra"),
        ("/reopen", {"version": 0, "reason": "x"}, 400, "a reason of 3-500"),
    ],
)
def test_doors_answer_one_clear_line(
    served: tuple[LiveApp, str, Path], path: str, body: dict[str, Any], status: int, message: str
) -> None:
    client, run, _ = served
    answer = client.post(f"/api/sample/{run}/{SAMPLE}{path}", body)
    assert answer.status_code == status
    assert list(answer.json()) == ["error"] and message in answer.json()["error"]


def test_unknown_and_malformed_samples(served: tuple[LiveApp, str, Path]) -> None:
    client, run, _ = served
    assert client.get(f"/api/sample/{run}/S-9").json() == {"error": f"no sample 'S-9' in run {run}"}
    assert client.get(f"/api/sample/{run}/S-9").status_code == 404
    bad = client.get(f"/api/sample/{run}/..%20x")
    assert bad.status_code == 400 and "sample id" in bad.json()["error"]
    assert client.get(f"/img/{run}/{SAMPLE}/0/0/x-ray.png").status_code == 400


def test_cross_site_and_foreign_host_requests_are_refused(
    served: tuple[LiveApp, str, Path],
) -> None:
    client, run, _ = served
    path = f"/api/sample/{run}/{SAMPLE}/release"
    no_token = client.post(path, {"version": 0}, csrf=False)
    assert no_token.status_code == 403 and "cross-site" in no_token.json()["error"]
    form = client.request(
        "POST",
        path,
        b"version=0",
        {"X-CSRF-Token": client.csrf, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 400 and "JSON body" in form.json()["error"]
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get(f"/api/sample/{run}/{SAMPLE}").json()["state"] == "open"


def test_access_token_guards_every_request(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    finished_sample(database, SAMPLE)
    add_user(database, "Ann Lee")
    with LiveApp(database, access_token="t" * 20) as client:
        assert client.get("/").status_code == 403
        assert client.get("/login").status_code == 403  # the token comes before the login
        assert client.get("/?token=wrong").status_code == 403
        first = client.get("/?token=" + "t" * 20)
        assert first.status_code == 303 and first.headers["location"] == "/login"
        assert "leukoscope_review_token" in first.headers["set-cookie"]
        assert client.get("/login").status_code == 200  # the cookie carries it from now on
        assert client.login("Ann Lee").status_code == 200
        assert client.get("/").status_code == 200
        assert client.client().login("Ann Lee").status_code == 403  # a session needs the token


def test_cell_pictures_are_colour_composite_and_fluorescence(
    served: tuple[LiveApp, str, Path],
) -> None:
    client, run, _ = served
    composite = client.get(f"/img/{run}/{SAMPLE}/0/0/composite.png")
    fluorescence = client.get(f"/img/{run}/{SAMPLE}/0/0/fluorescence.png")
    assert composite.headers["content-type"] == "image/png"
    assert composite.headers["x-leukoscope-crop"] == "stored"  # no saved acquisition to re-cut
    rgb = cv2.imdecode(np.frombuffer(composite.body, np.uint8), cv2.IMREAD_COLOR)
    fl = cv2.imdecode(np.frombuffer(fluorescence.body, np.uint8), cv2.IMREAD_COLOR)
    assert rgb.shape == fl.shape == (TILE, TILE, 3)  # the stored crop's resolution
    # auto-contrast: the dark disc is black, the bright background white in every channel
    assert rgb[TILE // 2, TILE // 2].tolist() == [0, 0, 0]
    assert rgb[0, 0].tolist() == [255, 255, 255]
    # fluorescence in its display colour (#40ff60, BGR 60 ff 40): bright disc, black border
    assert fl[TILE // 2, TILE // 2].tolist() == [0x60, 0xFF, 0x40] and fl[0, 0].tolist() == [
        0,
        0,
        0,
    ]
    assert client.get(f"/img/{run}/{SAMPLE}/5/5/composite.png").status_code == 404
