"""Declaring an incident (突发事件, SEEDS §11): what `kefu incident declare` and `POST /incidents` share. An incident
id is declared once: a second declaration is a 409."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import BAD_INPUT, CONFLICT, ApiError
from infra import temporal_env
from models.incident import Declare, IncidentStatus, incident_workflow_id
from policies.loader import PolicyError, get_pack
from workflows.incident import IncidentWorkflow


def check_policy(declare: Declare) -> None:
    """The declaration's pack exists and has an incidents section."""
    try:
        pack = get_pack(declare.policy)
    except PolicyError as exc:
        raise ApiError(BAD_INPUT, "policy", str(exc).removeprefix("policy: ")) from exc
    if pack.incidents is None:
        raise ApiError(BAD_INPUT, "policy", f"pack {pack.key} has no incidents section")


async def declare_incident(client: Client, declare: Declare,
                           task_queue: str = temporal_env.TASK_QUEUE) -> WorkflowHandle[Any, IncidentStatus]:
    """Start the incident's workflow; an incident id is declared once (a second declaration is refused)."""
    check_policy(declare)
    try:
        return await client.start_workflow(
            IncidentWorkflow.run, declare, id=incident_workflow_id(declare.incident_id), task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"incident {declare.incident_id} · level {declare.level} · {declare.policy}",
            static_details=f"{declare.title}\n\nlead {declare.lead}; declared by {declare.declared_by.id}")
    except WorkflowAlreadyStartedError as exc:
        raise ApiError(CONFLICT, "incident_id", f"incident {declare.incident_id} was declared before") from exc
