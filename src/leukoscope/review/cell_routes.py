"""The review app's cell API: a sample's page state, a cell's reclassification, a cell's picture."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from leukoscope import limits
from leukoscope.errors import ParameterError
from leukoscope.pictures.native import cell_tiles
from leukoscope.pictures.views import VIEWS, cell_view
from leukoscope.review.auth import user_of
from leukoscope.review.service import ReviewService
from leukoscope.types import CellKey

Index = Annotated[int, PathParam(ge=0, le=limits.MAX_INDEX)]
"""A field or cell index in a path: bounded before it reaches SQLite (whose integers are 64-bit)."""


class CellEdit(BaseModel):
    """A reclassification: the new label and the cell version it was made on."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(max_length=16)
    version: int = Field(ge=0)
    reason: str = Field(default="", max_length=1000)


def add_cell_routes(app: FastAPI, service: ReviewService) -> None:
    """GET /api/sample/RUN/SAMPLE, POST /api/sample/RUN/SAMPLE/cell/FOV/CELL and
    GET /img/RUN/SAMPLE/FOV/CELL/VIEW.png."""

    @app.get("/api/sample/{run_id}/{sample_id}")
    def sample_state(run_id: str, sample_id: str) -> dict[str, Any]:
        with service.lock:
            return service.view(run_id, sample_id)

    @app.post("/api/sample/{run_id}/{sample_id}/cell/{fov}/{cell_index}")
    def reclassify(
        request: Request, run_id: str, sample_id: str, fov: Index, cell_index: Index,
        edit: CellEdit,
    ) -> dict[str, Any]:  # fmt: skip
        return service.change(
            run_id, sample_id, lambda reviews: reviews.reclassify(
                run_id, sample_id, fov, cell_index, edit.label,
                reviewer=user_of(request), version=edit.version, reason=edit.reason,
            ),
        )  # fmt: skip

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
