"""The worker's side of the trust boundary (issue 14; infra/principal.py has the format and the keys).

A workflow interceptor verifies the signed principal on every update and signal before its handler runs:
- an update without a valid principal fails validation (nothing is written; validators do not run on replay);
- a signal without one is handed to the handler as refused: the request records it as a rejected audit line with
  the reason and changes nothing else. Signals replay, so the check is deterministic (workflow time, the header in
  history) and applies from patch `verified-principals` on: runs recorded before it replay as they ran.

The principal must match the actor the payload names; customer answers need role `customer`; the incident's
events need role `system`, which only the worker's own key may sign. Deterministic code only.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from temporalio import workflow
from temporalio.worker import (
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

with workflow.unsafe.imports_passed_through():
    from infra.principal import Principal, PrincipalError, Verifier, actor_of, header_token, message_models
    from workflows.common import require

PATCH = "verified-principals"
CUSTOMER_ANSWERS = ("confirm", "survey")
SYSTEM_SIGNALS = ("incident",)
# Messages whose sender is not a person: link_request is sent by a request workflow to its incident (it only names
# the request; the incident's events still need the worker's own signature to reach the request).
UNCHECKED = frozenset({"link_request"})

_refused: ContextVar[str | None] = ContextVar("kefu_signal_refused", default=None)


def signal_refusal() -> str | None:
    """Inside a signal handler: why its principal was refused, or None when it was verified (or predates the
    check)."""
    return _refused.get()


def check(verifier: Verifier, message: str, args: Any, headers: Any, fresh: bool, seen: set[str]) -> Principal:
    """The verified principal of one message, or PrincipalError saying why not (one line, no payload). A token is
    good once per run (`seen`): a captured header cannot be replayed, on this request or (bound to its workflow id)
    on another."""
    token = header_token(headers)
    if token is None:
        raise PrincipalError("principal: missing; send it through the kefu API or a signing client "
                             "(docs/security.md)")
    payload = args[0] if args else None
    claims = verifier.verify(token, workflow.info().workflow_id, message, payload, fresh)
    if claims.jti in seen:
        raise PrincipalError("principal: this header was used before")
    principal = claims.principal
    actor = actor_of(payload)
    if actor is not None and actor != principal:
        raise PrincipalError(f"actor: {actor.role} {actor.sub!r} is not the verified principal "
                             f"({principal.role} {principal.sub!r})")
    if message in CUSTOMER_ANSWERS and principal.role != "customer":
        raise PrincipalError(f"principal: {message} is the customer's answer; role {principal.role} may not give it")
    if message in SYSTEM_SIGNALS and principal.role != "system":
        raise PrincipalError(f"principal: {message} comes from the engine only")
    return principal


class PrincipalInterceptor(Interceptor):
    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        verifier = self.verifier

        class Inbound(WorkflowInboundInterceptor):
            def __init__(self, next: WorkflowInboundInterceptor) -> None:
                super().__init__(next)
                self.seen: set[str] = set()  # single-use tokens taken by this run (rebuilt as the history replays)

            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                model = message_models().get(input.update)
                if model is not None and input.args:  # a malformed payload's fields first: they tell nothing
                    require(input.args[0], model, input.update)  # about the request (its rules come after identity)
                if input.update not in UNCHECKED:
                    try:
                        check(verifier, input.update, input.args, input.headers, True, self.seen)
                    except PrincipalError as exc:
                        raise ValueError(str(exc)) from None
                super().handle_update_validator(input)

            async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
                token = header_token(input.headers)
                if token and (jti := Verifier.jti(token)):
                    self.seen.add(jti)
                return await super().handle_update_handler(input)

            async def handle_signal(self, input: HandleSignalInput) -> None:
                reason = None
                if input.signal not in UNCHECKED and workflow.patched(PATCH):
                    try:
                        check(verifier, input.signal, input.args, input.headers, False, self.seen)
                        if jti := Verifier.jti(header_token(input.headers) or ""):
                            self.seen.add(jti)
                    except PrincipalError as exc:
                        reason = str(exc)
                token = _refused.set(reason)
                try:
                    await super().handle_signal(input)
                finally:
                    _refused.reset(token)

        return Inbound
