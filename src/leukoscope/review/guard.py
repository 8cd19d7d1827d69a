"""What every request to the review app passes before a route sees it: the access token (when the
app has one), the page's CSRF token and a JSON body on state-changing requests, and a session."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

from leukoscope.review.auth import Gate
from leukoscope.review.refusals import refusal

TOKEN_COOKIE = "leukoscope_review_token"


def cross_site_refusal(request: Request, csrf: str) -> Response | None:
    """A state-changing request without the page's CSRF token or a JSON body is refused."""
    if request.method in ("GET", "HEAD"):
        return None
    header = request.headers.get("x-csrf-token", "")
    if not secrets.compare_digest(header.encode(), csrf.encode()):
        return refusal(403, "cross-site request refused: reload the review page")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return refusal(400, "send a JSON body (Content-Type: application/json)")
    return None


def add_guard(app: FastAPI, gate: Gate, csrf: str, access_token: str | None) -> None:
    """The middleware that checks the access token (then remembered in a cookie), the CSRF token
    and the session (`gate`) of every request, in that order; the first refusal answers."""

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        set_cookie = False
        if access_token is not None:
            given = request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token") or ""
            if not secrets.compare_digest(given.encode(), access_token.encode()):
                return refusal(403, "access token missing or wrong: open the address with ?token=")
            set_cookie = TOKEN_COOKIE not in request.cookies
        response = cross_site_refusal(request, csrf) or await gate.check(request)
        if response is None:
            response = await call_next(request)
        if set_cookie and access_token is not None:
            response.set_cookie(TOKEN_COOKIE, access_token, httponly=True, samesite="strict")
        return response
