"""Notice keys (domain/effects.py): stable when a failed workflow task's retry numbers events differently."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.request import ServiceRequest
from tests.workflow.helpers import intake

T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def keys(state: ServiceRequest) -> list[str]:
    return [n.key for n in state.outbox.notices]


def test_the_nth_notice_of_a_kind_keeps_its_key_whatever_came_before() -> None:
    first, retry = ServiceRequest(intake(request_id="R-1"), "kefu-sr-R-1"), ServiceRequest(intake(request_id="R-1"),
                                                                                         "kefu-sr-R-1")
    first.notify(first.record(T, "kefu", "system", "classified"), "acknowledgement", "customer", "customer")
    retry.record(T, "sup-1", "supervisor", "incident_linked")  # the retried task took a signal first
    retry.notify(retry.record(T, "kefu", "system", "classified"), "acknowledgement", "customer", "customer")
    assert keys(first) == keys(retry) == ["R-1:acknowledgement:customer:customer:1"]
    assert first.outbox.events[0].seq != retry.outbox.events[-1].seq  # the audit seq moved; the notice key did not


def test_repeated_notices_are_numbered_per_kind_and_recipient() -> None:
    state = ServiceRequest(intake(request_id="R-2"), "kefu-sr-R-2")
    for recipient in ("team_lead", "supervisor", "team_lead"):
        state.notify(0, "escalation", "escalation", recipient)
    state.notify(0, "progress", "customer", "customer")
    assert keys(state) == ["R-2:escalation:escalation:team_lead:1", "R-2:escalation:escalation:supervisor:1",
                           "R-2:escalation:escalation:team_lead:2", "R-2:progress:customer:customer:1"]
