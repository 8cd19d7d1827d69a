"""The review web application (FastAPI): sample list, review page, JSON API, cell pictures.

Doors: every path part and body field is validated (run ids, sample ids, labels, reasons) and a
refusal is one JSON line `{"error": ...}` with 400 (bad input), 401 (not logged in), 404 (unknown),
409 (stale edit or locked sample) or 403 (access or cross-site). State-changing requests need the
page's CSRF token in `X-CSRF-Token` and a JSON body, so another site cannot post on the user's
behalf; with an access token (required off loopback) every request needs it (cookie or `?token=`).
Every page and API but the login needs a session (review/auth.py); the reviewer a change is
recorded under is the session's account, never a name in the body.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware

from leukoscope.config import Settings
from leukoscope.review.auth import Gate
from leukoscope.review.body_limit import BodyLimit
from leukoscope.review.cell_routes import add_cell_routes
from leukoscope.review.comments import add_comment_routes
from leukoscope.review.guard import add_guard
from leukoscope.review.page_routes import add_page_routes
from leukoscope.review.refusals import add_error_handlers
from leukoscope.review.release_routes import add_release_routes
from leukoscope.review.secure_headers import SecureHeaders
from leukoscope.review.service import ReviewService

MAX_BODY_BYTES = 64 * 1024
"""Largest request body: a reclassification, release or login is well under 1 KiB."""


def create_app(
    database: Path,
    settings: Settings | None = None,
    *,
    access_token: str | None = None,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The review app over `database`; `access_token` guards every request when given,
    `allowed_hosts` (Host header names) guards against DNS rebinding."""
    settings = settings or Settings()
    service = ReviewService(Path(database), settings)
    gate = Gate(service.accounts, settings.review.session_minutes * 60.0)
    csrf = secrets.token_urlsafe(32)
    app = FastAPI(title="leukoscope review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.state.csrf = csrf
    app.state.gate = gate
    add_guard(app, gate, csrf, access_token)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(SecureHeaders)  # outermost: on the outer layers' refusals too
    gate.add_routes(app, csrf)
    add_comment_routes(app, service)
    add_error_handlers(app)
    add_page_routes(app, service, csrf)
    add_cell_routes(app, service)
    add_release_routes(app, service)
    return app
