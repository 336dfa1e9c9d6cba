"""What the routes take from each call: the app's state, the verified caller (bearer token), the Idempotency-Key.

The caller's identity comes only from the token (api/auth.py); a role check here is the API's own (who may submit,
read the directory, import agents, read the KPIs). Which action a role may take on a request is the workflow's
rule (domain/permissions.py): the API sends it as the caller and reports the refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.auth import TokenVerifier
from api.errors import FORBIDDEN, UNAUTHORIZED, ApiError
from api.settings import Settings
from archive.store import Archive
from infra.issuer import Issuer
from infra.principal import Principal
from models.actions import ROLE_RANK


@dataclass(frozen=True)
class AppState:
    client: Client  # signs only under acting_as (api/temporal.py signing_client)
    archive: Archive
    verifier: TokenVerifier
    issuer: Issuer  # customer links
    settings: Settings
    task_queue: str


def state(request: Request) -> AppState:
    return request.app.state.kefu  # type: ignore[no-any-return]


bearer = HTTPBearer(auto_error=False, description="A JWT from kefu's issuer (`kefu token issue`) or your OIDC "
                                                  "provider")


def principal(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
              app: Annotated[AppState, Depends(state)]) -> Principal:
    """The caller the bearer token vouches for (a plain function: FastAPI runs it off the event loop, where a
    provider's keys may be fetched)."""
    if credentials is None:
        raise ApiError(UNAUTHORIZED, "Authorization", "send `Authorization: Bearer <token>`")
    return app.verifier.verify(credentials.credentials)


def staff(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if caller.role == "customer":
        raise ApiError(FORBIDDEN, "Authorization", "customers answer through the link in their notice")
    return caller


def at_least(minimum: str, what: str) -> Callable[[Principal], Principal]:
    """A dependency admitting roles from `minimum` up."""

    def check(caller: Annotated[Principal, Depends(staff)]) -> Principal:
        if ROLE_RANK[caller.role] < ROLE_RANK[minimum]:
            raise ApiError(FORBIDDEN, "Authorization", f"role {caller.role} may not {what} ({minimum} and above)")
        return caller

    return check


State = Annotated[AppState, Depends(state)]
Staff = Annotated[Principal, Depends(staff)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description="the Temporal update id: a "
                                                                                    "retried call acts once")]
