"""Request bodies: the workflow's own messages (models/), with the actor optional. The actor is the caller the
token verified; a body may name it (clients that send the `kefu schema` payloads as they are) but never another
actor: that is a 403."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, create_model

from api.errors import FORBIDDEN, ApiError
from infra.principal import Principal
from models.actions import Act, Actor, EscalateRequest
from models.incident import Declare, Link, Progress, Resolve, Review


def optional_actor(message: type[BaseModel], field: str = "actor") -> type[BaseModel]:
    """`message` with its actor optional: the body a route takes (`ActBody`, …)."""
    return create_model(f"{message.__name__}Body", __base__=message, **{field: (Actor | None, None)})  # type: ignore[call-overload]


ActBody = optional_actor(Act)
EscalateBody = optional_actor(EscalateRequest)
DeclareBody = optional_actor(Declare, "declared_by")
LinkBody, ProgressBody, ResolveBody, ReviewBody = (optional_actor(m) for m in (Link, Progress, Resolve, Review))


M = TypeVar("M", bound=BaseModel)


def as_caller(body: BaseModel, message: type[M], caller: Principal, field: str = "actor") -> M:
    """The workflow's message with the caller as its actor; a body naming someone else is refused."""
    named: Actor | None = getattr(body, field)
    if named is not None and (named.id, named.role) != (caller.sub, caller.role):
        raise ApiError(FORBIDDEN, field, f"{named.role} {named.id!r} is not the caller: this token acts as "
                                         f"{caller.role} {caller.sub!r}")
    return message.model_validate({**body.model_dump(), field: {"id": caller.sub, "role": caller.role}})
