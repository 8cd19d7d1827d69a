"""Who is logged in to the review app: sessions, failed-login throttling, the login routes.

A session is a random token (`secrets`) in an HttpOnly, SameSite=Strict cookie, kept in memory by
the server (only its SHA-256) with an idle expiry (`[review] session_minutes`). It lasts while its
account is active and unchanged since the login: disabling the account or resetting its password
ends it at its next request. After 5 failed logins for a name within 15 minutes that name is
refused for 5 minutes.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from leukoscope.review.accounts import PASSWORD_MAX, Accounts, LoginRefused
from leukoscope.review.page import login_html
from leukoscope.review.refusals import refusal

SESSION_COOKIE = "leukoscope_review_session"
PUBLIC_PATHS = frozenset({"/login", "/api/login", "/favicon.ico"})
FAILURES_ALLOWED = 5
FAILURE_WINDOW_S = 15 * 60
LOCKOUT_S = 5 * 60
TRACKED_NAMES_MAX = 10_000
_NEXT_RE = re.compile(r"^/(sample/[A-Za-z0-9._%-]{1,200}/[A-Za-z0-9._%-]{1,200})?$")


class Login(BaseModel):
    """A login: the account name and its password."""

    model_config = ConfigDict(extra="forbid")
    user: str = Field(max_length=200)
    password: str = Field(max_length=PASSWORD_MAX)


@dataclass
class Session:
    """One login: whose, the account's change time at login, when it was last used."""

    user: str
    changed_s: float
    seen: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Logged-in sessions in memory, by the SHA-256 of their token; idle ones expire."""

    def __init__(self, idle_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s = idle_s
        self.clock = clock
        self._by_digest: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, user: str, changed_s: float) -> str:
        """A new session's token."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            stale = [d for d, s in self._by_digest.items() if now - s.seen > self.idle_s]
            for digest in stale:
                del self._by_digest[digest]
            self._by_digest[_digest(token)] = Session(user, changed_s, now)
        return token

    def find(self, token: str) -> Session | None:
        """The live session of `token` (its idle time restarts), or None."""
        if not token:
            return None
        digest = _digest(token)
        with self._lock:
            session = self._by_digest.get(digest)
            if session is None:
                return None
            now = self.clock()
            if now - session.seen > self.idle_s:
                del self._by_digest[digest]
                return None
            session.seen = now
            return session

    def end(self, token: str) -> None:
        """End the session of `token` (no matter if there is none)."""
        with self._lock:
            self._by_digest.pop(_digest(token), None)


class LoginThrottle:
    """Failed logins per name (case-insensitive): 5 within 15 minutes lock it for 5 minutes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().casefold()[:200]

    def refusal(self, name: str) -> str | None:
        """Why `name` may not try to log in now, or None."""
        key = self._key(name)
        with self._lock:
            until = self._locked.get(key)
            now = self.clock()
            if until is None:
                return None
            if now >= until:
                del self._locked[key]
                return None
        minutes = max(1, math.ceil((until - now) / 60))
        return (
            f"too many failed logins for {name.strip()!r}: try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}"
        )

    def failed(self, name: str) -> None:
        """Count a failed login of `name`; the fifth within the window locks it."""
        key = self._key(name)
        with self._lock:
            now = self.clock()
            if len(self._failures) >= TRACKED_NAMES_MAX:  # forget names with no recent failure
                for old in [k for k, v in self._failures.items() if now - v[-1] > FAILURE_WINDOW_S]:
                    del self._failures[old]
            times = self._failures.setdefault(key, deque())
            times.append(now)
            while times and now - times[0] > FAILURE_WINDOW_S:
                times.popleft()
            if len(times) >= FAILURES_ALLOWED:
                self._locked[key] = now + LOCKOUT_S
                del self._failures[key]

    def succeeded(self, name: str) -> None:
        """A right password: the name's failures are forgotten."""
        with self._lock:
            self._failures.pop(self._key(name), None)


def is_public(path: str) -> bool:
    """Paths served without a session: the login page and its API, static files, the icon."""
    return path in PUBLIC_PATHS or path.startswith("/static/")


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a page of this app (the list or a sample), else '/'."""
    return value if value and _NEXT_RE.fullmatch(value) else "/"


def user_of(request: Request) -> str:
    """The logged-in account's name (set by the guard for every non-public request)."""
    return cast(str, request.state.user)


class Gate:
    """The session check every non-public request passes, and the login routes."""

    def __init__(self, accounts: Accounts, idle_s: float) -> None:
        self.accounts = accounts
        self.sessions = Sessions(idle_s)
        self.throttle = LoginThrottle()

    def _live_user(self, token: str) -> str | None:
        session = self.sessions.find(token)
        if session is None:
            return None
        account = self.accounts.account(session.user)
        if account is None or not account.active or account.changed_s != session.changed_s:
            self.sessions.end(token)  # disabled, password reset or removed: the session ends
            return None
        return account.name

    async def check(self, request: Request) -> Response | None:
        """None when the request may go on (its user in `request.state.user`); else the answer:
        a page is redirected to /login (303), anything else is 401."""
        path = request.url.path
        if is_public(path):
            return None
        token = request.cookies.get(SESSION_COOKIE, "")
        user = await run_in_threadpool(self._live_user, token) if token else None
        if user is not None:
            request.state.user = user
            return None
        if path.startswith(("/api/", "/img/")):
            return refusal(401, "log in first")
        target = "/login" if path == "/" else f"/login?next={quote(path, safe='/')}"
        return RedirectResponse(target if safe_next(path) == path else "/login", status_code=303)

    def add_routes(self, app: FastAPI, csrf: str) -> None:
        """GET /login, POST /api/login, POST /api/logout."""

        @app.get("/login", response_class=HTMLResponse)
        def login_page(next: str | None = None) -> HTMLResponse:
            return HTMLResponse(login_html(csrf, safe_next(next)))

        @app.post("/api/login")
        def login(request: Request, body: Login) -> Response:
            locked = self.throttle.refusal(body.user)
            if locked is not None:
                return refusal(429, locked)
            try:
                account = self.accounts.check_login(body.user, body.password)
            except LoginRefused as exc:
                self.throttle.failed(body.user)
                return refusal(401, str(exc))
            self.throttle.succeeded(body.user)
            old = request.cookies.get(SESSION_COOKIE)
            if old:
                self.sessions.end(old)
            token = self.sessions.start(account.name, account.changed_s)
            response = JSONResponse({"user": account.name})
            response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/")
            return response

        @app.post("/api/logout")
        def logout(request: Request) -> Response:
            self.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
            response = JSONResponse({"logged_out": user_of(request)})
            response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
            return response
