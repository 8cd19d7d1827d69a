"""How the review app refuses: one JSON line `{"error": ...}` with its status, and the exception
handlers that turn a refused request (bad input, unknown sample, stale edit, refused release) into
one."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from leukoscope.errors import LeukoscopeError, ParameterError, StorageError
from leukoscope.results.release_gates import ReleaseRefused
from leukoscope.results.review_records import ReviewConflict


def refusal(status: int, message: str) -> JSONResponse:
    """The answer to a refused request: `{"error": message}` with `status`."""
    return JSONResponse({"error": message}, status_code=status)


def add_error_handlers(app: FastAPI) -> None:
    """400 for invalid input, 403 for a refused release, 404 for unknown ids, 409 for a stale edit
    or a locked sample, 500 for a store that failed."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return refusal(400, f"{where}: {first.get('msg', 'invalid')}" if where else "invalid body")

    @app.exception_handler(LeukoscopeError)
    async def refused(_: Request, exc: LeukoscopeError) -> JSONResponse:
        if isinstance(exc, ReleaseRefused):
            return refusal(403, str(exc))
        if isinstance(exc, ReviewConflict):
            return refusal(409, str(exc))
        if isinstance(exc, ParameterError):
            return refusal(400, str(exc))
        if isinstance(exc, StorageError):
            return refusal(500, str(exc))
        return refusal(400, str(exc))

    @app.exception_handler(LookupError)
    async def unknown(_: Request, exc: LookupError) -> JSONResponse:
        return refusal(404, str(exc.args[0]) if exc.args else "not found")
