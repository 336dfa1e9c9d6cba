"""Updates as the verified principal (issue 14): the API's Temporal client signs only what `acting_as` names.

The client shares an existing connection (temporal_env.connect(), or a test's) but carries its own
SigningInterceptor with trust_payload_actor=False: a call made outside `acting_as` sends no principal, and the
worker refuses it. `act_as` sends one update as one principal with the caller's Idempotency-Key as the update id,
so a retried call acts once, and turns the workflow's refusal into a 422 with its reason.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import BAD_INPUT, NOT_FOUND, REFUSED, UNAVAILABLE, ApiError
from infra.principal import Principal, Signer, SigningInterceptor, acting_as, signer_from_env

UPDATE_TIMEOUT = 30.0  # seconds an update may wait for a worker before the call answers 503
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
R = TypeVar("R", bound=BaseModel)


def signing_client(base: Client, signer: Signer | None = None) -> Client:
    """`base`'s connection and data converter, signing the principal of `acting_as` only."""
    return Client(base.service_client, namespace=base.namespace, data_converter=base.data_converter,
                  interceptors=[SigningInterceptor(signer or signer_from_env(), trust_payload_actor=False)])


def update_id(key: str | None) -> str:
    """The Temporal update id of a call: its Idempotency-Key, or a fresh id when it sent none."""
    if key is None:
        return f"api-{uuid.uuid4().hex}"
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(BAD_INPUT, "Idempotency-Key", "1 to 128 letters, digits or . _ : - (starting with a letter "
                                                     "or digit)")
    return key


async def act_as(client: Client, principal: Principal, workflow_id: str, name: str, payload: BaseModel,
                 result_type: type[R], key: str | None, what: str = "request") -> R:
    """Execute update `name` on `workflow_id`, signed for `principal`."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        with acting_as(principal):
            return await asyncio.wait_for(handle.execute_update(name, payload, id=update_id(key),
                                                                result_type=result_type), UPDATE_TIMEOUT)
    except TimeoutError:
        raise ApiError(UNAVAILABLE, None, f"no worker answered within {UPDATE_TIMEOUT:.0f} s; retry with the same "
                                          "Idempotency-Key") from None
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except RPCError as exc:
        raise rpc_problem(exc, what, workflow_id) from None


def refusal(exc: WorkflowUpdateFailedError) -> ApiError:
    """The workflow's reason, one line; its first word names the field or rule when it has one."""
    message = str(getattr(exc.cause, "message", None) or exc.cause or "refused").splitlines()[0]
    head, sep, rest = message.partition(": ")
    if sep and re.fullmatch(r"[a-z_][a-z0-9_.]*", head):
        return ApiError(REFUSED, head, rest)
    return ApiError(REFUSED, None, message)


def rpc_problem(exc: RPCError, what: str, workflow_id: str) -> ApiError:
    if exc.status == RPCStatusCode.NOT_FOUND:
        ident = workflow_id.split("-", 2)[-1]
        return ApiError(NOT_FOUND, f"{what}_id", f"no {what} {ident}")
    return ApiError(UNAVAILABLE, None, f"Temporal: {exc.status.name if exc.status else 'error'}")

