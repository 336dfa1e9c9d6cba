"""Determinism gate: the committed histories of real runs (tests/histories/*.json, recorded by
tests/histories/record.py) must replay against the current workflow code. A change that would break running
workflows fails here; see docs/determinism.md for how to make such a change safely (workflow.patched). They were
recorded without encryption: with keys configured (a developer's .data/codec.key) the replayer must accept
plaintext, which kefu otherwise refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from infra import temporal_env
from models.incident import incident_workflow_id
from models.intake import Intake
from tests.histories.record import INCIDENT, INCIDENT_HISTORY, SCENARIOS, workflow_id
from workflows.incident import IncidentWorkflow
from workflows.service_request import ServiceRequestWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"


def converter() -> DataConverter:
    """Production's converter, accepting the plaintext of these recordings even when keys are configured."""
    return temporal_env.data_converter(allow_plaintext=True)


def load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(workflow_id(name), (HISTORIES / f"{name}.json").read_text(encoding="utf-8"))


def test_every_scenario_has_a_committed_history() -> None:
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == sorted([*SCENARIOS, INCIDENT_HISTORY])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_history_replays_with_the_current_code(name: str) -> None:
    history = load(name)
    assert history.events[-1].event_type == 2, "recorded runs are complete"  # WORKFLOW_EXECUTION_COMPLETED
    replayer = Replayer(workflows=[ServiceRequestWorkflow], data_converter=converter())
    result = await replayer.replay_workflow(history)  # raises on any nondeterminism
    assert result.replay_failure is None


async def test_incident_history_replays_with_the_current_code() -> None:
    text = (HISTORIES / f"{INCIDENT_HISTORY}.json").read_text(encoding="utf-8")
    history = WorkflowHistory.from_json(incident_workflow_id(INCIDENT), text)
    assert history.events[-1].event_type == 2, "the incident completed after its review"
    replayer = Replayer(workflows=[IncidentWorkflow], data_converter=converter())
    assert (await replayer.replay_workflow(history)).replay_failure is None


@workflow.defn(name="ServiceRequestWorkflow")
class ReorderedWorkflow:
    """A 'refactor' that sleeps before loading the policy: the commands no longer match the history."""

    @workflow.run
    async def run(self, intake: Intake) -> None:
        await workflow.sleep(1)


async def test_the_gate_catches_a_nondeterministic_change() -> None:
    replayer = Replayer(workflows=[ReorderedWorkflow], data_converter=converter(),
                        workflow_runner=UnsandboxedWorkflowRunner())
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load("happy_path"))
