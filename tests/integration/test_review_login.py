"""Logging in to the review app through real HTTP (uvicorn on loopback, urllib): who may see and
change what, sessions, failed-login throttling; accounts in a real results database."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from leukoscope.config import ConfigError, Settings, load_settings
from leukoscope.errors import ParameterError
from leukoscope.results.review_store import ReviewStore
from leukoscope.review.accounts import REFUSED, Accounts, LoginRefused

from .release_helpers import give_evidence
from .review_helpers import PASSWORD, LiveApp, add_user, finished_sample

SAMPLE = "S-1"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "results.sqlite"
    finished_sample(path, SAMPLE)
    add_user(path, "Ann Lee")
    return path


@pytest.fixture
def live(database: Path) -> Iterator[LiveApp]:
    with LiveApp(database) as app:
        yield app


def _run(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return str(db.execute("SELECT run_id FROM runs").fetchone()[0])


def test_without_a_session_pages_redirect_and_the_api_is_refused(
    live: LiveApp, database: Path
) -> None:
    run = _run(database)
    index = live.get("/")
    assert index.status_code == 303 and index.headers["location"] == "/login"
    page = live.get(f"/sample/{run}/{SAMPLE}")
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=/sample/{run}/{SAMPLE}"
    for path in (f"/api/sample/{run}/{SAMPLE}", f"/img/{run}/{SAMPLE}/0/0/composite.png"):
        answer = live.get(path)
        assert (answer.status_code, answer.json()) == (401, {"error": "log in first"}), path
    login = live.get(f"/login?next=/sample/{run}/{SAMPLE}")
    assert login.status_code == 200 and f'data-csrf="{live.csrf}"' in login.text
    assert f'data-next="/sample/{run}/{SAMPLE}"' in login.text
    assert "default-src 'self'" in login.headers["content-security-policy"]
    assert "<script>" not in login.text and '<script src="/static/account.js">' in login.text
    assert 'data-next="/"' in live.get("/login?next=//evil.example/").text  # no open redirect
    assert live.get("/static/account.js").status_code == 200
    assert live.get("/favicon.ico").status_code == 204


def test_an_anonymous_change_is_refused_and_not_audited(live: LiveApp, database: Path) -> None:
    run = _run(database)
    base = f"/api/sample/{run}/{SAMPLE}"
    for path, body in (
        ("/cell/0/0", {"label": "BAS", "version": 0}),
        ("/release", {"version": 0}),
        ("/reopen", {"version": 0, "reason": "wrong count"}),
    ):
        answer = live.post(base + path, body)
        assert (answer.status_code, answer.json()) == (401, {"error": "log in first"}), path
    assert live.logout().status_code == 401
    with ReviewStore(database) as reviews:
        assert reviews.audit(run, SAMPLE) == [] and reviews.state(run, SAMPLE) is None


def test_login_sets_a_strict_http_only_session_cookie(live: LiveApp, database: Path) -> None:
    answer = live.login("Ann Lee")
    assert answer.status_code == 200 and answer.json() == {"user": "Ann Lee"}
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("leukoscope_review_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    index = live.get("/")
    assert index.status_code == 200
    assert 'Logged in as <b id="user">Ann Lee</b>' in index.text and 'id="logout"' in index.text
    page = live.get(f"/sample/{_run(database)}/{SAMPLE}")
    assert 'id="reviewer"' not in page.text and '<b id="user">Ann Lee</b>' in page.text
    assert live.logout().json() == {"logged_out": "Ann Lee"}
    assert live.get("/").status_code == 303  # the session ended with the logout


def test_a_login_needs_the_csrf_token(live: LiveApp) -> None:
    answer = live.post("/api/login", {"user": "Ann Lee", "password": PASSWORD}, csrf=False)
    assert answer.status_code == 403 and "cross-site" in answer.json()["error"]


def test_wrong_password_unknown_and_disabled_users_fail_alike(
    live: LiveApp, database: Path
) -> None:
    add_user(database, "Bo")
    with Accounts(database) as accounts:
        accounts.disable_user("Bo")
    for name, password in (("Ann Lee", "not the password"), ("Cy", PASSWORD), ("Bo", PASSWORD)):
        answer = live.login(name, password)
        assert (answer.status_code, answer.json()) == (401, {"error": REFUSED}), name
        assert "set-cookie" not in answer.headers
    assert live.get("/").status_code == 303
    too_long = live.login("Ann Lee", "x" * 257)
    assert too_long.status_code == 400 and "password" in too_long.json()["error"]


def test_unknown_names_take_as_long_as_wrong_passwords(database: Path) -> None:
    def seconds(name: str) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            with pytest.raises(LoginRefused):
                accounts.check_login(name, "not the password")
            times.append(time.perf_counter() - start)
        return sorted(times)[1]

    with Accounts(database) as accounts:
        accounts.check_login("Ann Lee", PASSWORD)  # warm up
        known, unknown = seconds("Ann Lee"), seconds("Nobody")
    assert unknown > 0.25 * known  # both verify an Argon2id hash (a lookup alone is ~1000x faster)


def test_disabling_ends_the_session_at_the_next_request(live: LiveApp, database: Path) -> None:
    run = _run(database)
    assert live.login("Ann Lee").status_code == 200
    assert live.get(f"/api/sample/{run}/{SAMPLE}").status_code == 200
    with Accounts(database) as accounts:  # as `leukoscope user disable` does, server running
        accounts.disable_user("Ann Lee")
    edit = live.post(f"/api/sample/{run}/{SAMPLE}/cell/0/0", {"label": "BAS", "version": 0})
    assert (edit.status_code, edit.json()) == (401, {"error": "log in first"})
    assert live.login("Ann Lee").status_code == 401
    with Accounts(database) as accounts:
        accounts.enable_user("Ann Lee")
    assert live.get("/").status_code == 303  # enabling again does not bring the session back
    assert live.login("Ann Lee").status_code == 200
    assert live.get("/").status_code == 200
    with ReviewStore(database) as reviews:
        assert reviews.audit(run, SAMPLE) == []


def test_a_password_reset_ends_the_session(live: LiveApp, database: Path) -> None:
    assert live.login("Ann Lee").status_code == 200
    with Accounts(database) as accounts:
        accounts.reset_password("Ann Lee", "a new long password")
    assert live.get("/").status_code == 303
    assert live.login("Ann Lee").status_code == 401
    assert live.login("Ann Lee", "a new long password").status_code == 200


def test_audit_rows_carry_the_logged_in_name(live: LiveApp, database: Path) -> None:
    run = _run(database)
    give_evidence(database, run, SAMPLE)
    add_user(database, "Bo Chen")
    assert live.login("ann lee").json() == {"user": "Ann Lee"}  # names match in any case
    base = f"/api/sample/{run}/{SAMPLE}"
    cells = live.get(base).json()["cells"]
    first, second = cells[0], cells[1]
    assert live.post(f"{base}/cell/{first['fov']}/{first['cell_index']}",
                     {"label": "ARTEFACT", "version": 0}).status_code == 200  # fmt: skip
    bo = live.client()
    assert bo.login("Bo Chen").status_code == 200
    assert bo.post(f"{base}/cell/{second['fov']}/{second['cell_index']}",
                   {"label": "SMUDGE", "version": 0}).status_code == 200  # fmt: skip
    released = bo.post(f"{base}/release", {"version": 2})
    assert released.status_code == 200, released.text
    assert released.json()["reviewer"] == "Bo Chen"
    with ReviewStore(database) as reviews:
        audit = reviews.audit(run, SAMPLE)
    assert [(a.action, a.reviewer) for a in audit] == [
        ("reclassify", "Ann Lee"), ("reclassify", "Bo Chen"), ("release", "Bo Chen"),
    ]  # fmt: skip


def test_five_failed_logins_lock_the_name_for_five_minutes(live: LiveApp) -> None:
    now = [1000.0]
    live.app.state.gate.throttle.clock = lambda: now[0]
    for _ in range(5):
        assert live.login("Ann Lee", "guessing wrong").status_code == 401
    locked = live.login("Ann Lee")  # even the right password
    assert locked.status_code == 429
    assert locked.json() == {
        "error": "too many failed logins for 'Ann Lee': try again in 5 minutes"
    }
    assert live.login("ANN LEE").status_code == 429  # the same name in another case
    now[0] += 4 * 60
    assert "try again in 1 minute" in live.login("Ann Lee").json()["error"]
    now[0] += 61
    assert live.login("Ann Lee").status_code == 200


def test_failures_spread_over_more_than_15_minutes_do_not_lock(live: LiveApp) -> None:
    now = [0.0]
    live.app.state.gate.throttle.clock = lambda: now[0]
    for _ in range(8):
        assert live.login("Ann Lee", "guessing wrong").status_code == 401
        now[0] += 4 * 60
    assert live.login("Ann Lee").status_code == 200


def test_an_idle_session_expires(database: Path) -> None:
    settings = Settings.model_validate({"review": {"session_minutes": 2}})
    with LiveApp(database, settings=settings, user="Ann Lee") as live:
        now = [0.0]
        sessions = live.app.state.gate.sessions
        sessions.clock = lambda: now[0]
        assert live.login("Ann Lee").status_code == 200
        now[0] += 100
        assert live.get("/").status_code == 200  # used: the idle time starts again
        now[0] += 100
        assert live.get("/").status_code == 200
        now[0] += 121
        assert live.get("/").status_code == 303


def test_session_minutes_is_bounded(tmp_path: Path) -> None:
    assert load_settings(environ={}).review.session_minutes == 30
    path = tmp_path / "lab.toml"
    path.write_text("[review]\nsession_minutes = 0\n")
    with pytest.raises(ConfigError, match=r"review\.session_minutes"):
        load_settings(path, environ={})


def test_accounts_check_names_passwords_and_rehash(database: Path) -> None:
    with Accounts(database) as accounts:
        with pytest.raises(ParameterError, match="exists already"):
            accounts.add_user("ann lee", "another password")
        with pytest.raises(ParameterError, match="reviewer name"):
            accounts.add_user("<b>", PASSWORD)
        with pytest.raises(ParameterError, match="10-256 characters, got 9"):
            accounts.add_user("Cy", "123456789")
        with pytest.raises(ParameterError, match="10-256 characters, got 257"):
            accounts.add_user("Cy", "x" * 257)
        with pytest.raises(ParameterError, match="no user 'Dee'"):
            accounts.disable_user("Dee")
        assert [(a.name, a.active) for a in accounts.list_users()] == [("Ann Lee", True)]
        assert accounts.authenticate("Ann Lee", PASSWORD) == "Ann Lee"
        weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
        with sqlite3.connect(database) as db:
            db.execute("UPDATE review_users SET password_hash = ?", (weak,))
        db.close()
        assert accounts.authenticate("Ann Lee", PASSWORD) == "Ann Lee"
        with sqlite3.connect(database) as db:
            stored = db.execute("SELECT password_hash FROM review_users").fetchone()[0]
        db.close()
    assert stored.startswith("$argon2id$") and stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)
