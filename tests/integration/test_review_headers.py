"""The review app's security headers and cookie attributes as docs/review.md states them, over real
HTTP (uvicorn on loopback, urllib): every answer carries Content-Security-Policy `default-src
'self'` (no inline script or style), `frame-ancestors 'none'`, `nosniff` and no referrer; the access
token and the session live in HttpOnly, SameSite=Strict cookies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .review_helpers import Answer, LiveApp, add_user, finished_sample

SAMPLE = "S-1"
TOKEN = "review-access-token-0123456789"


def directives(answer: Answer) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive -> sources."""
    policy = answer.headers["content-security-policy"]
    parts = [p.split() for p in policy.split(";") if p.strip()]
    return {p[0].lower(): p[1:] for p in parts}


def assert_secured(answer: Answer, what: str) -> None:
    policy = directives(answer)
    assert policy["default-src"] == ["'self'"], what
    assert policy["frame-ancestors"] == ["'none'"], what
    sources = [s.lower() for values in policy.values() for s in values]
    assert not any(s in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:") for s in sources), what
    for name in ("script-src", "style-src"):  # where given, no wider than 'self'
        assert policy.get(name, ["'self'"]) == ["'self'"], (what, name)
    assert answer.headers["x-content-type-options"] == "nosniff", what
    assert answer.headers["referrer-policy"] == "no-referrer", what


def cookie_attributes(header: str) -> tuple[str, dict[str, str]]:
    """A Set-Cookie header as (name, {attribute (lower case): value})."""
    first, *rest = (part.strip() for part in header.split(";"))
    attributes = {}
    for part in rest:
        key, _, value = part.partition("=")
        attributes[key.strip().lower()] = value.strip()
    return first.partition("=")[0], attributes


def test_every_kind_of_answer_carries_the_security_headers(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    finished_sample(database, SAMPLE)
    add_user(database, "Ann Lee")
    with sqlite3.connect(database) as db:
        run = str(db.execute("SELECT run_id FROM runs").fetchone()[0])
    with LiveApp(database) as live:
        answers = {
            "redirect to the login": live.get("/"),
            "login page": live.get("/login"),
            "api without a session": live.get(f"/api/sample/{run}/{SAMPLE}"),
            "cross-site post": live.post("/api/login", {"user": "Ann Lee"}, csrf=False),
            "wrong password": live.login("Ann Lee", "not the password"),
            "login": live.login("Ann Lee"),
        }
        answers |= {
            "sample list": live.get("/"),
            "review page": live.get(f"/sample/{run}/{SAMPLE}"),
            "api": live.get(f"/api/sample/{run}/{SAMPLE}"),
            "script": live.get("/static/review.js"),
            "picture": live.get(f"/img/{run}/{SAMPLE}/0/0/composite.png"),
            "unknown page": live.get("/no/such/page"),
            "bad index": live.get(f"/img/{run}/{SAMPLE}/0/99999999999/composite.png"),
            "logout": live.logout(),
        }
    expected = {"redirect to the login": 303, "api without a session": 401, "cross-site post": 403,
                "wrong password": 401, "unknown page": 404, "bad index": 400}  # fmt: skip
    for what, answer in answers.items():
        assert answer.status_code == expected.get(what, 200), (what, answer.status_code)
        assert_secured(answer, what)


def test_the_outer_layers_refusals_carry_them_too(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    finished_sample(database, SAMPLE)
    with LiveApp(database, allowed_hosts=["127.0.0.1"]) as live:
        foreign = live.get("/login", headers={"Host": "evil.example"})  # DNS rebinding
        huge = live.request(
            "POST", "/api/login", b"{" + b" " * 70_000 + b"}",
            {"Content-Type": "application/json", "X-CSRF-Token": live.csrf},
        )  # fmt: skip
    assert foreign.status_code == 400
    assert_secured(foreign, "foreign host")
    assert huge.status_code == 413  # over the 64 KiB body limit
    assert_secured(huge, "over-size body")


def test_session_and_token_cookies_are_http_only_and_strict(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    finished_sample(database, SAMPLE)
    add_user(database, "Ann Lee")
    with LiveApp(database, access_token=TOKEN) as live:
        refused = live.get("/")
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        assert_secured(refused, "no token")
        first = live.get("/?token=" + TOKEN)
        name, token = cookie_attributes(first.headers["set-cookie"])
        assert name == "leukoscope_review_token"
        assert "httponly" in token and token["samesite"].lower() == "strict"
        assert token["path"] == "/"
        assert "set-cookie" not in live.get("/login").headers  # set once, then carried
        login = live.login("Ann Lee")
        assert login.status_code == 200
        name, session = cookie_attributes(login.headers["set-cookie"])
        assert name == "leukoscope_review_session"
        assert "httponly" in session and session["samesite"].lower() == "strict"
        assert session["path"] == "/"
        logout = live.logout()
        name, ended = cookie_attributes(logout.headers["set-cookie"])
        assert name == "leukoscope_review_session"
        assert "httponly" in ended and ended["samesite"].lower() == "strict"
        assert ended.get("max-age") == "0"  # the browser drops it
