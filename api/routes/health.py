"""`/health`: Temporal and the archive database reachable (for load balancers and `make run`'s users)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import State
from archive.reads import ping

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(app: State) -> JSONResponse:
    """200 when both answer, else 503; each part says `ok` or what failed (its error's type, no detail)."""
    parts: dict[str, Any] = {}
    try:
        parts["temporal"] = "ok" if await app.client.service_client.check_health() else "not serving"
    except Exception as exc:
        parts["temporal"] = f"unreachable ({type(exc).__name__})"
    try:
        await run_in_threadpool(ping, app.archive)
        parts["database"] = "ok"
    except Exception as exc:
        parts["database"] = f"unreachable ({type(exc).__name__})"
    healthy = all(value == "ok" for value in parts.values())
    return JSONResponse({"status": "ok" if healthy else "unhealthy", **parts}, status_code=200 if healthy else 503)
