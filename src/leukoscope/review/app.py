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

import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from leukoscope import limits
from leukoscope.classifier.model_info import read_model_info
from leukoscope.config import Settings
from leukoscope.errors import LeukoscopeError, ParameterError, StorageError
from leukoscope.ids import check_sample_id
from leukoscope.pictures.native import NativeCrops, cell_tiles
from leukoscope.pictures.views import VIEWS, cell_view, display_colours
from leukoscope.results.store import ResultStore, SampleRecord
from leukoscope.review.accounts import Accounts
from leukoscope.review.auth import Gate, user_of
from leukoscope.review.body_limit import BodyLimit
from leukoscope.review.comments import add_comment_routes, comments
from leukoscope.review.gates import ReleaseRefused
from leukoscope.review.page import index_html, review_html
from leukoscope.review.prepared import PreparedPictures
from leukoscope.review.records import ReviewConflict
from leukoscope.review.secure_headers import SecureHeaders
from leukoscope.review.state import SampleFacts, page_state, sample_facts
from leukoscope.review.store import ReviewStore
from leukoscope.types import MODALITIES, CellKey, Modality, SampleStatus, parse_modalities

ASSETS = ("review.js", "review.css", "account.js")
Index = Annotated[int, PathParam(ge=0, le=limits.MAX_INDEX)]
"""A field or cell index in a path: bounded before it reaches SQLite (whose integers are 64-bit)."""
MAX_BODY_BYTES = 64 * 1024
"""Largest request body: a reclassification, release or login is well under 1 KiB."""
RUN_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
TOKEN_COOKIE = "leukoscope_review_token"


class CellEdit(BaseModel):
    """A reclassification: the new label and the cell version it was made on."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(max_length=16)
    version: int = Field(ge=0)
    reason: str = Field(default="", max_length=1000)


class SignOff(BaseModel):
    """A release: the sample version the signing user saw."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=0)


class Release(SignOff):
    """A release: final (the default) or partial, which needs a reason sent with the result."""

    partial: bool = False
    reason: str = Field(default="", max_length=1000)


class Reopen(SignOff):
    """Reopening a released sample: a reason is required."""

    reason: str = Field(max_length=1000)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class ReviewService:
    """The stores and caches behind the app; every store call under one lock."""

    def __init__(self, database: Path, settings: Settings) -> None:
        if not database.is_file():
            raise ParameterError(f"results database {database} not found (pass --db)")
        self.database = database
        self.results = ResultStore(database)
        self.reviews = ReviewStore(database)
        self.accounts = Accounts(database)
        self.require_verification = settings.review.require_verification
        self.colours = display_colours(settings)
        self.crop_um = settings.pipeline.segmentation.crop_um
        self.native = NativeCrops(self.crop_um)
        self.prepared = PreparedPictures(database, settings.pipeline.segmentation.crop_um)
        self.lock = threading.Lock()
        self._facts: dict[tuple[str, str], SampleFacts] = {}
        self._modalities: dict[str, tuple[Modality, ...]] = {}

    def close(self) -> None:
        """Stop preparing pictures, close the connections."""
        self.prepared.close()
        self.accounts.close()
        self.reviews.close()
        self.results.close()

    def check_sample(self, run_id: str, sample_id: str) -> SampleRecord:
        """The sample's row; ParameterError for a malformed id, LookupError for an unknown one."""
        if not RUN_ID_RE.fullmatch(run_id):
            raise ParameterError(f"run id {run_id!r} is not allowed")
        check_sample_id(sample_id)
        for row in self.results.samples(run_id):
            if row["sample_id"] == sample_id:
                return row
        raise LookupError(f"no sample {sample_id!r} in run {run_id}")

    def facts(self, run_id: str, sample_id: str) -> SampleFacts:
        """The finished sample's summary and results (cached: they no longer change)."""
        key = (run_id, sample_id)
        if key not in self._facts:
            self._facts[key] = sample_facts(self.results, run_id, sample_id)
        return self._facts[key]

    def finished(self, run_id: str, sample_id: str) -> SampleFacts:
        """The facts of a finished sample; ReviewConflict while it is still running."""
        row = self.check_sample(run_id, sample_id)
        if row["status"] == SampleStatus.RUNNING.value:
            raise ReviewConflict(
                f"sample {sample_id!r} is still running: review it once its differential is final"
            )
        return self.facts(run_id, sample_id)

    def view(self, run_id: str, sample_id: str) -> dict[str, Any]:
        """The page state, changing nothing (a sample never opened shows its original cells)."""
        return self._shown(self.finished(run_id, sample_id), run_id, sample_id)

    def _shown(self, facts: SampleFacts, run_id: str, sample_id: str) -> dict[str, Any]:
        """The page state with the comments and the crop's side in um (for the scale bar)."""
        state = page_state(self.reviews, facts, run_id, sample_id)
        state["comments"] = comments(self.reviews, run_id, sample_id)
        state["crop_um"] = self.crop_um
        return state

    def open(self, run_id: str, sample_id: str) -> dict[str, Any]:
        """Open the sample for review (once, before its first change) and return the page
        state."""
        facts = self.finished(run_id, sample_id)
        known = (facts.summary, list(facts.results.values()))
        self.reviews.open_review(self.results, run_id, sample_id, known=known)
        return self._shown(facts, run_id, sample_id)

    def modalities(self, run_id: str) -> tuple[Modality, ...]:
        """The modalities the run's model saw (the thumbnail's tiles); all four if unknown."""
        if run_id not in self._modalities:
            run = next((r for r in self.results.runs() if r["run_id"] == run_id), None)
            info = read_model_info(run["model_path"], run["model_version"]) if run else None
            try:
                found = parse_modalities(list(info.modalities)) if info else MODALITIES
            except ParameterError:
                found = MODALITIES
            self._modalities[run_id] = found
        return self._modalities[run_id]


def _asset(name: str) -> str:
    return resources.files("leukoscope.review").joinpath("static").joinpath(name).read_text("utf-8")


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
    assets = {name: _asset(name) for name in ASSETS}

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        set_cookie = False
        if access_token is not None:
            given = request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token") or ""
            if not secrets.compare_digest(given.encode(), access_token.encode()):
                return _error(403, "access token missing or wrong: open the address with ?token=")
            set_cookie = TOKEN_COOKIE not in request.cookies
        response = _refusal(request, csrf) or await gate.check(request)
        if response is None:
            response = await call_next(request)
        if set_cookie and access_token is not None:
            response.set_cookie(TOKEN_COOKIE, access_token, httponly=True, samesite="strict")
        return response

    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(SecureHeaders)  # outermost: on the outer layers' refusals too
    _add_routes(app, service, gate, csrf, assets)
    return app


def _refusal(request: Request, csrf: str) -> Response | None:
    """A state-changing request without the page's CSRF token or a JSON body is refused."""
    if request.method in ("GET", "HEAD"):
        return None
    header = request.headers.get("x-csrf-token", "")
    if not secrets.compare_digest(header.encode(), csrf.encode()):
        return _error(403, "cross-site request refused: reload the review page")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _error(400, "send a JSON body (Content-Type: application/json)")
    return None


def _add_routes(
    app: FastAPI, service: ReviewService, gate: Gate, csrf: str, assets: dict[str, str]
) -> None:
    """The error handlers, the login routes, the pages, the JSON API and the pictures."""
    gate.add_routes(app, csrf)
    add_comment_routes(app, service)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"{where}: {first.get('msg', 'invalid')}" if where else "invalid body")

    @app.exception_handler(LeukoscopeError)
    async def refused(_: Request, exc: LeukoscopeError) -> JSONResponse:
        if isinstance(exc, ReleaseRefused):
            return _error(403, str(exc))
        if isinstance(exc, ReviewConflict):
            return _error(409, str(exc))
        if isinstance(exc, ParameterError):
            return _error(400, str(exc))
        if isinstance(exc, StorageError):
            return _error(500, str(exc))
        return _error(400, str(exc))

    @app.exception_handler(LookupError)
    async def unknown(_: Request, exc: LookupError) -> JSONResponse:
        return _error(404, str(exc.args[0]) if exc.args else "not found")

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        with service.lock:
            samples = service.results.samples()
            states = service.reviews.states()
        page = index_html(samples, states, str(service.database), csrf, user_of(request))
        return HTMLResponse(page)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in assets:
            raise LookupError(f"no asset {name!r}")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(assets[name], media_type=kind, headers={"Cache-Control": "no-cache"})

    @app.get("/sample/{run_id}/{sample_id}", response_class=HTMLResponse)
    def review_page(request: Request, run_id: str, sample_id: str) -> HTMLResponse:
        with service.lock:
            row = service.check_sample(run_id, sample_id)
            finished = row["status"] != SampleStatus.RUNNING.value
            state = service.view(run_id, sample_id) if finished else None
        return HTMLResponse(review_html(run_id, sample_id, csrf, state, user_of(request)))

    @app.get("/api/sample/{run_id}/{sample_id}")
    def sample_state(run_id: str, sample_id: str) -> dict[str, Any]:
        with service.lock:
            return service.view(run_id, sample_id)

    @app.post("/api/sample/{run_id}/{sample_id}/cell/{fov}/{cell_index}")
    def reclassify(
        request: Request, run_id: str, sample_id: str, fov: Index, cell_index: Index,
        edit: CellEdit,
    ) -> dict[str, Any]:  # fmt: skip
        with service.lock:
            service.open(run_id, sample_id)
            service.reviews.reclassify(
                run_id, sample_id, fov, cell_index, edit.label,
                reviewer=user_of(request), version=edit.version, reason=edit.reason,
            )  # fmt: skip
            return service.open(run_id, sample_id)

    @app.post("/api/sample/{run_id}/{sample_id}/release")
    def release(request: Request, run_id: str, sample_id: str, body: Release) -> dict[str, Any]:
        with service.lock:
            service.open(run_id, sample_id)
            service.reviews.release(
                run_id, sample_id, reviewer=user_of(request), version=body.version,
                partial=body.partial, reason=body.reason,
                verification=service.require_verification,
            )  # fmt: skip
            return service.open(run_id, sample_id)

    @app.post("/api/sample/{run_id}/{sample_id}/reopen")
    def reopen(request: Request, run_id: str, sample_id: str, body: Reopen) -> dict[str, Any]:
        with service.lock:
            service.open(run_id, sample_id)
            service.reviews.reopen(
                run_id, sample_id, reviewer=user_of(request), reason=body.reason,
                version=body.version,
            )  # fmt: skip
            return service.open(run_id, sample_id)

    @app.get("/img/{run_id}/{sample_id}/{fov}/{cell_index}/{view}.png")
    def picture(run_id: str, sample_id: str, fov: Index, cell_index: Index, view: str) -> Response:
        if view not in VIEWS:
            raise ParameterError(f"view {view!r} is not one of {', '.join(VIEWS)}")
        with service.lock:
            row = service.check_sample(run_id, sample_id)
            result = service.facts(run_id, sample_id).results.get((fov, cell_index))
            if result is None:
                raise LookupError(f"cell {fov}/{cell_index} is not counted in {sample_id!r}")
            png = service.results.thumbnail(run_id, CellKey(sample_id, fov, cell_index))
            modalities = service.modalities(run_id)
        ready = service.prepared.tiles(run_id, sample_id, fov, cell_index)
        found = (
            (ready, "native")
            if ready is not None
            else cell_tiles(service.native, row["source"], fov, result.bbox, png, modalities)
        )
        if found is None:
            raise LookupError(f"no picture of cell {fov}/{cell_index} of {sample_id!r}")
        tiles, crop = found
        data = cell_view(tiles, service.colours, view)
        headers = {"Cache-Control": "max-age=3600", "X-Leukoscope-Crop": crop}
        return Response(data, media_type="image/png", headers=headers)
