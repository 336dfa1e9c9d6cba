"""Hypothesis-generated bad input against submit and every update and signal (issue 7).

Each payload gets a clear one-line rejection (or is valid and applied), no workflow task ever fails, and the
request keeps answering. `make test` runs a small sample; KEFU_FUZZ_EXAMPLES=10000 is the nightly size.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from cli.main import validation_message
from models.actions import ACTION_KINDS, ROLE_RANK
from models.intake import Intake
from tests.conftest import running_worker
from tests.workflow.helpers import intake, start, status

EXAMPLES = int(os.environ.get("KEFU_FUZZ_EXAMPLES", "80"))

scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
roles = st.sampled_from([*ROLE_RANK, "nobody"])
actors = json_values | st.fixed_dictionaries({"id": st.text(max_size=70) | json_values, "role": roles})
actions = json_values | st.fixed_dictionaries(
    {"kind": st.sampled_from([*ACTION_KINDS, "bogus"])},
    optional={key: json_values | st.text(max_size=30) for key in
              ("message", "text", "question", "owner", "department", "reason", "priority", "by", "summary",
               "root_cause", "customer_notice", "passed", "joint")})
act_payloads = json_values | st.fixed_dictionaries({"actor": actors, "action": actions})
confirm_payloads = json_values | st.fixed_dictionaries({}, optional={"accepted": json_values, "comment": json_values})
survey_payloads = json_values | st.fixed_dictionaries(
    {"score": st.integers(-50, 200) | json_values}, optional={"nps": json_values, "resolved": json_values})
escalate_payloads = json_values | st.fixed_dictionaries(
    {"actor": actors, "reason": st.text(max_size=20) | json_values},
    optional={"to_level": st.integers(-3, 9) | json_values})


def sample(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """Draw `count` examples with hypothesis's own generator (shrinking off: we want the variety)."""
    drawn: list[Any] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck), phases=["generate"])
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def mutated_intakes(count: int) -> list[dict[str, Any]]:
    """A valid intake with one to three fields replaced by arbitrary JSON."""
    base = intake().model_dump(mode="json")
    fields = [*base, "customer.name", "customer.phone", "customer.email", "customer.id", "unknown_field"]
    swaps = st.lists(st.tuples(st.sampled_from(fields), json_values), min_size=1, max_size=3)
    out = []
    for changes in sample(swaps, count):
        raw = {**base, "customer": dict(base["customer"])}
        for field, value in changes:
            if field.startswith("customer."):
                if isinstance(raw["customer"], dict):  # an earlier swap may have replaced the whole object
                    raw["customer"][field.split(".", 1)[1]] = value
            else:
                raw[field] = value
        out.append(raw)
    return out


def test_submit_rejects_bad_intake_in_one_line_naming_the_field() -> None:
    rejected = 0
    for raw in mutated_intakes(EXAMPLES * 4):
        try:
            Intake.model_validate(raw)
        except ValidationError as exc:
            message = validation_message(exc)
            field = message.split(":", 1)[0]
            assert "\n" not in message and field and field != "input", message
            rejected += 1
    assert rejected > EXAMPLES  # most mutations are invalid; each said which field


async def test_updates_and_signals_never_wedge_a_request(ts_env: WorkflowEnvironment, archive: Archive,
                                                         task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, accepted_by="agent-li")
        refused = applied = 0
        for name, strategy in (("act", act_payloads), ("confirm", confirm_payloads), ("survey", survey_payloads)):
            for payload in sample(strategy, EXAMPLES):
                try:
                    await handle.execute_update(name, payload, result_type=dict)
                    applied += 1
                except WorkflowUpdateFailedError as exc:
                    message = str(getattr(exc.cause, "message", exc.cause))
                    assert message and "\n" not in message.strip(), message
                    refused += 1
        signals = sample(escalate_payloads, EXAMPLES)
        for payload in signals:
            await handle.signal("escalate", payload)
        st_after = await status(handle)  # still answering
        history = await handle.fetch_history()
    failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert not failed, failed[0].workflow_task_failed_event_attributes.failure.message
    assert refused > applied and st_after.request_id
    trail = archive.audit_trail(st_after.request_id)
    escalate_events = [e for e in trail if e["action"] in ("escalate", "escalation_at_top")
                       and e["actor_id"] != "kefu"]
    assert len(escalate_events) >= len(signals) - 3  # every signal answered: applied, or recorded as rejected
