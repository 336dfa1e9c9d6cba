"""Every error as `{"error": {"field": ..., "message": ...}}`: 400 bad input naming the field, 401/403 identity,
404 unknown or out of scope, 409 conflict, 422 a refused action with the workflow's reason, 503 a dependency down.
Never a traceback, never a value of personal data (pydantic's messages name the field and the rule, not the input),
and the log line names the route and the error's type only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from api.errors import BAD_INPUT, ApiError
from infra.logconfig import get_logger

log = get_logger("kefu.api")
LOCATIONS = ("body", "query", "path", "header")


def error(status: int, field: str | None, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ApiError(status, field, message).body(), status_code=status, headers=headers)


def field_of(loc: tuple[Any, ...]) -> str | None:
    """`("body", "action", "respond", "message")` → `action.respond.message`; a header keeps its name."""
    parts = [str(part) for part in loc[1:]] if loc and loc[0] in LOCATIONS else [str(part) for part in loc]
    return ".".join(parts) or None


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error(exc.status, exc.field, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid"}
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ") + more
        if first.get("type") == "json_invalid":
            return error(BAD_INPUT, "body", "not JSON")
        return error(BAD_INPUT, field_of(tuple(first.get("loc", ()))) or "body", message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, None, str(exc.detail))

    @app.middleware("http")
    async def unexpected(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Anything else is a 500 that says nothing of the request; the server logs no traceback (its text may
        quote customer data)."""
        try:
            return await call_next(request)
        except Exception as exc:
            route = getattr(request.scope.get("route"), "path", "?")  # the template: a link's token stays out
            log.error("api request failed", route=route, method=request.method, error=type(exc).__name__)
            return error(500, None, "internal error; the API log has the route and the error's type")
