"""Comments on a cell or on a whole sample: kept as 'comment' rows of the review audit (hash
chained with every other change), shown on the review page with who wrote them and when."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from leukoscope import limits
from leukoscope.errors import ParameterError
from leukoscope.results.review_records import REASON_MAX
from leukoscope.results.review_store import ReviewStore
from leukoscope.review.auth import user_of


class Comment(BaseModel):
    """A comment: on the sample, or with fov and cell_index on one of its cells."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=1000)
    fov: int | None = Field(default=None, ge=0, le=limits.MAX_INDEX)
    cell_index: int | None = Field(default=None, ge=0, le=limits.MAX_INDEX)


def comments(reviews: ReviewStore, run_id: str, sample_id: str) -> list[dict[str, Any]]:
    """The sample's comments, oldest first, as the page shows them."""
    return [
        {
            "fov": r.fov,
            "cell_index": r.cell_index,
            "text": r.reason,
            "reviewer": r.reviewer,
            "time_s": r.time_s,
        }
        for r in reviews.audit(run_id, sample_id)
        if r.action == "comment"
    ]


def add_comment_routes(app: FastAPI, service: Any) -> None:
    """POST /api/sample/RUN/SAMPLE/comment: the comment is recorded under the session's
    account; the answer is the page state."""

    @app.post("/api/sample/{run_id}/{sample_id}/comment")
    def comment(request: Request, run_id: str, sample_id: str, body: Comment) -> dict[str, Any]:
        text = body.text.strip()
        if not 3 <= len(text) <= REASON_MAX or not text.isprintable():
            raise ParameterError(f"a comment has 3-{REASON_MAX} printable characters on one line")
        if (body.fov is None) != (body.cell_index is None):
            raise ParameterError("a cell comment names both fov and cell_index")
        with service.lock:
            service.open(run_id, sample_id)
            service.reviews.comment(
                run_id, sample_id, body.fov, body.cell_index, text, reviewer=user_of(request)
            )
            return dict(service.open(run_id, sample_id))
