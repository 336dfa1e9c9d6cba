"""Impersonation matrix (issue 14): through a raw Temporal client, with a forged actor, a forged, expired, replayed
or misdirected principal header, every message is refused and the request's state and audit trail are unchanged.

Before: who acted was whatever the payload said (`act assign --role supervisor` by anyone who reached Temporal).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
import temporalio.client
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from infra.principal import HEADER, Principal, Signer, signer_from_env
from models.actions import Act, Confirm, EscalateRequest
from models.incident import IncidentEvent
from tests.conftest import running_worker
from tests.workflow.helpers import act, start, status

SUP = {"id": "sup-1", "role": "supervisor"}
ASSIGN = {"actor": SUP, "action": {"kind": "assign", "owner": "agent-b"}}
OUTSIDER = Signer("p1", Ed25519PrivateKey.generate())  # same key id as the default key, another key
PARTNER = Signer("partner", Ed25519PrivateKey.generate())  # trusted through KEFU_PRINCIPAL_TRUSTED (not system)


class FixedHeader(temporalio.client.Interceptor):
    """An attacker's client: sends whatever header it was given (or none)."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def intercept_client(self, next: temporalio.client.OutboundInterceptor) -> temporalio.client.OutboundInterceptor:
        token = self.token

        class Out(temporalio.client.OutboundInterceptor):
            def _h(self, headers: Mapping[str, Payload]) -> Mapping[str, Payload]:
                return headers if token is None else {**headers, HEADER: Payload(data=token.encode())}

            async def start_workflow_update(self, input: Any) -> Any:
                input.headers = self._h(input.headers)
                return await super().start_workflow_update(input)

            async def signal_workflow(self, input: Any) -> None:
                input.headers = self._h(input.headers)
                await super().signal_workflow(input)

        return Out(next)


def raw(env: WorkflowEnvironment, token: str | None = None) -> Client:
    c = env.client
    return Client(c.service_client, namespace=c.namespace, data_converter=c.data_converter,
                  interceptors=[FixedHeader(token)])


def token(signer: Signer, who: dict[str, str], workflow_id: str, message: str, payload: Any,
          ttl: timedelta = timedelta(minutes=5)) -> str:
    return signer.sign(Principal(sub=who["id"], role=who["role"]), workflow_id,  # type: ignore[arg-type]
                       message, payload, datetime.now().astimezone(), ttl)


async def refused(client: Client, handle: WorkflowHandle, name: str, payload: Any, why: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await client.get_workflow_handle(handle.id).execute_update(name, payload, result_type=dict)
    assert why in str(info.value.cause), str(info.value.cause)


@pytest.fixture
def partner_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    raw_key = PARTNER.public().public_bytes_raw()
    monkeypatch.setenv("KEFU_PRINCIPAL_TRUSTED", f"partner:{base64.b64encode(raw_key).decode()}")


async def test_every_forged_path_is_refused_and_changes_nothing(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str, partner_trusted: None) -> None:
    own = signer_from_env()
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue)
        other, _ = await start(ts_env.client, task_queue)
        await act(handle, "respond", message="您好")
        before, trail = await status(handle), archive.audit_trail(st.request_id)
        wid, assign = handle.id, Act.model_validate(ASSIGN)

        await refused(raw(ts_env), handle, "act", assign, "principal: missing")
        await refused(raw(ts_env, token(OUTSIDER, SUP, wid, "act", assign)), handle, "act", assign, "bad signature")
        await refused(raw(ts_env, token(own, SUP, other.id, "act", assign)), handle, "act", assign,
                      "signed for another request")
        await refused(raw(ts_env, token(own, SUP, wid, "act", Act.model_validate({**ASSIGN, "action": {
            "kind": "assign", "owner": "agent-c"}}))), handle, "act", assign, "signed for another payload")
        await refused(raw(ts_env, token(own, SUP, wid, "confirm", assign)), handle, "act", assign,
                      "signed for message 'confirm'")
        await refused(raw(ts_env, token(own, SUP, wid, "act", assign, ttl=timedelta(seconds=-60))), handle, "act",
                      assign, "expired")
        agent = {"id": "agent-li", "role": "agent"}
        await refused(raw(ts_env, token(own, agent, wid, "act", assign)), handle, "act", assign,
                      "is not the verified principal")
        system_act = Act.model_validate({"actor": {"id": "kefu", "role": "system"},
                                         "action": {"kind": "reevaluate", "reason": "as the engine"}})
        await refused(raw(ts_env, token(PARTNER, {"id": "kefu", "role": "system"}, wid, "act", system_act)), handle,
                      "act", system_act, "role system can only be signed by the worker")
        await refused(ts_env.client, handle, "act", system_act, "principal: missing")  # a trusted tool won't sign it
        await refused(raw(ts_env, token(own, agent, wid, "confirm", Confirm())), handle, "confirm", Confirm(),
                      "customer's answer")
        escalation = EscalateRequest.model_validate({"actor": SUP, "reason": "forged"})
        await refused(raw(ts_env), handle, "escalation", escalation, "principal: missing")

        # a good header works once; the same header again is refused
        good = token(PARTNER, SUP, wid, "act", assign)
        await raw(ts_env, good).get_workflow_handle(wid).execute_update("act", assign, result_type=dict)
        await refused(raw(ts_env, good), handle, "act", assign, "used before")

        # signals cannot answer: refused ones are recorded as rejected, with the reason, and change nothing
        level = (await status(handle)).escalation_level
        await raw(ts_env).get_workflow_handle(wid).signal("escalate", escalation)
        forged_event = IncidentEvent(incident_id="INC-X", seq=0, kind="resolved", level=1, title="forged",
                                     lead="sup-1", text="resolved by an outsider", at=datetime.now().astimezone())
        await raw(ts_env, token(PARTNER, SUP, wid, "incident", forged_event)).get_workflow_handle(wid).signal(
            "incident", forged_event)
        after = await status(handle)
        assert after.escalation_level == level and after.stage == "handling" and after.incident_id is None
    rejected = [e for e in archive.audit_trail(st.request_id) if e["rejected"]]
    assert [e["detail"]["reason"].split(";")[0] for e in rejected[-2:]] == [
        "principal: missing", "principal: incident comes from the engine only"]
    assert before.stage == after.stage and archive.audit_trail(st.request_id)[:len(trail)] == trail
    assert after.owner == "agent-b"  # only the verified supervisor's assignment took effect
