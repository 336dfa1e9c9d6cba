"""The FastAPI application: `create_app()` for `kefu serve` and `make run`, `create_app(client, archive)` for tests
and embedding (an existing Temporal connection and archive). OpenAPI at /openapi.json, docs at /docs; the schemas
are the pydantic models in models/ (the ones `kefu schema` prints)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from temporalio.client import Client

from api import handlers
from api.auth import verifier_for
from api.deps import AppState
from api.routes import ROUTERS
from api.settings import Settings, settings_from_env
from api.temporal import signing_client
from archive import migrate
from archive.store import Archive
from infra import temporal_env
from infra.issuer import Issuer, issuer_from_env

DESCRIPTION = """The front door to kefu's service requests for people and for systems in any language.

Send `Authorization: Bearer <token>`: a JWT from kefu's own issuer (`kefu token issue --sub sup-1 --role
supervisor`) or from your OIDC provider. Who acts is the token's subject and role, never what a body says.
Customers answer through the signed links in their notices (`/c/{token}`). Every action takes an `Idempotency-Key`
header that becomes the Temporal update id: a retried call acts once. Errors are
`{"error": {"field": ..., "message": ...}}`. See docs/api.md."""


def state(client: Client, archive: Archive, settings: Settings, issuer: Issuer, task_queue: str) -> AppState:
    return AppState(client=signing_client(client), archive=archive, verifier=verifier_for(settings, issuer),
                    issuer=issuer, settings=settings, task_queue=task_queue)


def create_app(client: Client | None = None, archive: Archive | None = None, *, settings: Settings | None = None,
               issuer: Issuer | None = None, task_queue: str = temporal_env.TASK_QUEUE) -> FastAPI:
    """The app; without a client it connects on start-up (TEMPORAL_ADDRESS, DATABASE_URL, as the CLI does)."""
    settings = settings or settings_from_env()
    issuer = issuer or issuer_from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not hasattr(app.state, "kefu"):
            store = Archive()
            migrate.prepare(store)  # at the migrations' head, as the worker leaves it
            app.state.kefu = state(await temporal_env.connect(), store, settings, issuer, task_queue)
        yield

    app = FastAPI(title="kefu", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    if client is not None:
        app.state.kefu = state(client, archive or Archive(), settings, issuer, task_queue)
    handlers.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
