"""The review app's pages: the sample list, a sample's review page, and their static files."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from leukoscope.review.auth import user_of
from leukoscope.review.page import index_html, review_html
from leukoscope.review.service import ReviewService
from leukoscope.types import SampleStatus

ASSETS = ("review.js", "review.css", "account.js")


def _asset(name: str) -> str:
    return resources.files("leukoscope.review").joinpath("static").joinpath(name).read_text("utf-8")


def add_page_routes(app: FastAPI, service: ReviewService, csrf: str) -> None:
    """GET /, /favicon.ico, /static/NAME and /sample/RUN/SAMPLE."""
    assets = {name: _asset(name) for name in ASSETS}

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
