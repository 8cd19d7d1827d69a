"""The review app's sign-off API: release a sample (final or partial) and reopen a released one."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from leukoscope.review.auth import user_of
from leukoscope.review.service import ReviewService


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


def add_release_routes(app: FastAPI, service: ReviewService) -> None:
    """POST /api/sample/RUN/SAMPLE/release and /api/sample/RUN/SAMPLE/reopen; each answers with
    the page state."""

    @app.post("/api/sample/{run_id}/{sample_id}/release")
    def release(request: Request, run_id: str, sample_id: str, body: Release) -> dict[str, Any]:
        return service.change(
            run_id, sample_id, lambda reviews: reviews.release(
                run_id, sample_id, reviewer=user_of(request), version=body.version,
                partial=body.partial, reason=body.reason,
                verification=service.require_verification,
            ),
        )  # fmt: skip

    @app.post("/api/sample/{run_id}/{sample_id}/reopen")
    def reopen(request: Request, run_id: str, sample_id: str, body: Reopen) -> dict[str, Any]:
        return service.change(
            run_id, sample_id, lambda reviews: reviews.reopen(
                run_id, sample_id, reviewer=user_of(request), reason=body.reason,
                version=body.version,
            ),
        )  # fmt: skip
