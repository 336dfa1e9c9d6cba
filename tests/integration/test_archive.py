"""Archive store on SQLite and PostgreSQL: idempotent writes, append-only history, list filters, aware times."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs
from temporalio.testing import ActivityEnvironment

from activities.archive import ArchiveActivities
from activities.notify import Notifier, TemplateContextError
from archive.store import Archive
from models.intake import Customer
from models.records import AuditEvent, Notice, PersistBatch, Projection, Registration

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)  # 01:30 on 22 Nov in Asia/Shanghai
NOTIFIER = Notifier()


# sqlite_url and pg_url come from tests/conftest_archive.py through tests/conftest.py.
@pytest.fixture(params=["sqlite", "postgresql"])
def archive(request: pytest.FixtureRequest) -> Iterator[Archive]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    store = Archive(url)
    store.create_schema()
    store.create_schema()  # safe to repeat
    yield store
    store.close()


def registration(request_id: str = "R-1", accepted_at: datetime = T0, **customer: Any) -> Registration:
    contact = {"id": "C-9", "name": "张三丰", "phone": "13812345678"} | customer
    return Registration(
        request_id=request_id,
        workflow_id=f"kefu-sr-{request_id}",
        policy_id="service_center",
        policy_version=3,
        channel="phone",
        customer=Customer(**contact),
        description="宽带无法上网",
        amount=Decimal("1234.50"),
        received_at=accepted_at - timedelta(minutes=2),
        accepted_at=accepted_at,
    )


def projection(archive: Archive, request_id: str = "R-1", minutes: int = 1, **fields: Any) -> Projection:
    """The registered request's projection, `minutes` after acceptance, with `fields` changed."""
    row = archive.get(request_id)
    assert row is not None
    base = {name: row[name] for name in Projection.model_fields}
    return Projection(**base | {"updated_at": row["accepted_at"] + timedelta(minutes=minutes)} | fields)


def event(seq: int, request_id: str = "R-1", action: str = "note") -> AuditEvent:
    return AuditEvent(
        request_id=request_id,
        seq=seq,
        at=T0 + timedelta(seconds=seq),
        actor_id="agent-7",
        actor_role="agent",
        action=action,
        stage="handling",
        detail={"before": "classified", "after": "handling", "at": T0 + timedelta(seconds=seq)},
    )


def ack_notice(request_id: str = "R-1", key: str = "R-1:ack") -> Notice:
    return Notice(
        key=key,
        request_id=request_id,
        template="acknowledgement",
        audience="customer",
        recipient="customer",
        context={"expected_completion": (T0 + timedelta(days=1)).isoformat()},
    )


def test_register_is_idempotent(archive: Archive) -> None:
    first = archive.register(registration())
    again = archive.register(registration())
    assert first.created and not again.created
    assert again.ticket == first.ticket
    assert re.fullmatch(r"KF-20261122-\d{6}", first.ticket)  # acceptance day in Asia/Shanghai
    assert archive.register(registration("R-2")).ticket != first.ticket
    row = archive.get("R-1")
    assert row is not None
    assert row["customer_phone"] == "13812345678" and row["amount"] == Decimal("1234.50")
    assert row["stage"] == "accepted" and row["ticket"] == first.ticket


def test_register_race_has_one_winner(archive: Archive) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: archive.register(registration("R-race")), range(8)))
    assert sum(result.created for result in results) == 1
    assert len({result.ticket for result in results}) == 1


def test_persist_replay_writes_nothing_twice(archive: Archive) -> None:
    archive.register(registration())
    owner_notice = Notice(
        key="R-1:warn:handling:0.5",
        request_id="R-1",
        template="warning",
        audience="owner",
        recipient="agent-7",
        context={"clock": "handling", "fraction": 0.5, "deadline": (T0 + timedelta(hours=12)).isoformat()},
    )
    batch = PersistBatch(
        projection=projection(archive, stage="handling", owner="agent-7", breached_clocks=["first_response"]),
        events=[event(0), event(1)],
        notices=[ack_notice(), owner_notice],
    )
    rendered = NOTIFIER.render_all(batch.notices, archive.notice_contact(batch))
    assert len(archive.persist(batch, rendered)) == 2
    assert archive.persist(batch, rendered) == []  # an activity retry
    assert [line["seq"] for line in archive.audit_trail("R-1")] == [0, 1]
    outbox = archive.outbox("R-1")
    assert [(row["channel"], row["recipient"]) for row in outbox] == [("sms", "13812345678"), ("internal", "agent-7")]
    assert all(row["status"] == "queued" for row in outbox)
    assert re.search(r"KF-20261122-\d{6}", outbox[0]["body"]) and "张三丰" in outbox[0]["body"]
    row = archive.get("R-1")
    assert row is not None
    assert (row["stage"], row["owner"], row["breached_clocks"]) == ("handling", "agent-7", ["first_response"])
    assert row["description"] == "宽带无法上网" and row["customer_name"] == "张三丰"  # registration untouched


def stored_lines(archive: Archive, request_id: str = "R-1") -> list[tuple[int, str]]:
    """(seq, action) of every audit row the archive holds for the request, in the order they were written."""
    with archive.engine.connect() as conn:
        return [(seq, action) for seq, action in conn.execute(
            text("SELECT seq, action FROM audit_events WHERE request_id = :r ORDER BY id"), {"r": request_id})]


def test_a_different_line_for_a_written_seq_never_changes_the_stored_line(archive: Archive) -> None:
    """Audit lines are insert-only (002 §2.4.3). A second write of another line under an existing (request_id, seq)
    — a retried workflow task, or anyone re-running one — used to overwrite the stored line (issue 14)."""
    archive.register(registration())
    archive.persist(PersistBatch(projection=projection(archive, minutes=1), events=[event(0, action="accepted")]))
    archive.persist(PersistBatch(projection=projection(archive, minutes=2), events=[event(0, action="rewritten")]))
    assert stored_lines(archive)[0] == (0, "accepted")
    assert stored_lines(archive) == [(0, "accepted"), (0, "rewritten")]  # the second is a further revision


def test_a_failed_tasks_line_is_superseded_by_the_completed_tasks_line_and_kept(archive: Archive) -> None:
    """A workflow task whose local activities ran but which never completed wrote seq 0-1; its retry took a signal
    first, so the same seqs carry other lines. The trail shows the completed task's lines; the failed task's stay
    in the archive, superseded; a plain replay changes nothing."""
    archive.register(registration())
    failed = PersistBatch(projection=projection(archive, minutes=1), events=[event(0, action="accepted"),
                                                                            event(1, action="classified")])
    archive.persist(failed)
    completed = PersistBatch(projection=projection(archive, minutes=2),
                             events=[event(0, action="incident_linked"), event(1, action="accepted"),
                                     event(2, action="classified")])
    archive.persist(completed)
    archive.persist(completed)  # a retry of the completed task's activity
    archive.persist(failed)  # the failed task's activity, late: an older task never wins
    trail = archive.audit_trail("R-1")
    assert [(e["seq"], e["action"], e["revision"]) for e in trail] == [
        (0, "incident_linked", 1), (1, "accepted", 1), (2, "classified", 0)]
    assert not {"prev_hash", "hash", "task_at", "id"} & set(trail[0])
    assert stored_lines(archive) == [(0, "accepted"), (1, "classified"), (0, "incident_linked"), (1, "accepted"),
                                     (2, "classified")]


def test_an_older_tasks_late_line_is_kept_but_never_shown(archive: Archive) -> None:
    """The failed task's activity may commit after its retry's (it was still running when the task failed): its
    line is kept, and the trail still shows the newer task's (task_at: the batch's updated_at)."""
    archive.register(registration())
    archive.persist(PersistBatch(projection=projection(archive, minutes=2), events=[event(0, action="completed")]))
    archive.persist(PersistBatch(projection=projection(archive, minutes=1), events=[event(0, action="orphan")]))
    archive.persist(PersistBatch(projection=projection(archive, minutes=1), events=[event(0, action="orphan")]))
    assert [e["action"] for e in archive.audit_trail("R-1")] == ["completed"]
    assert stored_lines(archive) == [(0, "completed"), (0, "orphan")]


def test_persist_unregistered_request_is_refused(archive: Archive) -> None:
    archive.register(registration())
    stray = projection(archive).model_copy(update={"request_id": "R-404"})
    with pytest.raises(ValueError, match="R-404"):
        archive.persist(PersistBatch(projection=stray, events=[event(0, "R-404")]))
    assert archive.audit_trail("R-404") == []


def test_persist_activity_refuses_unregistered_request_with_notices(archive: Archive) -> None:
    """The contact read that rendering needs refuses an unregistered request with persist's own error."""
    archive.register(registration())
    stray = projection(archive).model_copy(update={"request_id": "R-404"})
    batch = PersistBatch(projection=stray, events=[event(0, "R-404")], notices=[ack_notice("R-404", "R-404:ack")])
    with pytest.raises(ValueError, match=r"'R-404' is not registered: register_request must run first"):
        ActivityEnvironment().run(ArchiveActivities(archive, NOTIFIER).persist, batch)
    assert archive.audit_trail("R-404") == [] and archive.outbox() == []


def test_missing_template_key_writes_nothing(archive: Archive) -> None:
    archive.register(registration())
    before = archive.get("R-1")
    incomplete = ack_notice().model_copy(update={"context": {}})
    batch = PersistBatch(projection=projection(archive, stage="classified"), events=[event(0)], notices=[incomplete])
    with pytest.raises(TemplateContextError, match="expected_completion"):
        ActivityEnvironment().run(ArchiveActivities(archive, NOTIFIER).persist, batch)
    assert archive.get("R-1") == before and archive.audit_trail("R-1") == [] and archive.outbox() == []


def test_persist_refuses_notices_not_rendered(archive: Archive) -> None:
    archive.register(registration())
    with pytest.raises(ValueError, match="rendered"):
        archive.persist(PersistBatch(projection=projection(archive), notices=[ack_notice()]))
    assert archive.outbox() == []


def test_notice_contact_is_the_row_as_persist_leaves_it(archive: Archive) -> None:
    """Notices are rendered before persist writes: they see the batch's classification, unless its projection is
    stale (persist keeps the newer row)."""
    archive.register(registration(email="zsf@wudang.cn"))
    classified = PersistBatch(projection=projection(archive, minutes=10, request_type="complaint", priority="urgent"))
    contact = archive.notice_contact(classified)
    assert contact == {"ticket": archive.get("R-1")["ticket"], "request_type": "complaint",  # type: ignore[index]
                       "priority": "urgent", "customer_name": "张三丰", "customer_phone": "13812345678",
                       "customer_email": "zsf@wudang.cn"}
    archive.persist(classified)
    stale = PersistBatch(projection=projection(archive, minutes=5, request_type="inquiry", priority=None))
    assert archive.notice_contact(stale) == contact


def test_stale_projection_does_not_overwrite_newer(archive: Archive) -> None:
    archive.register(registration())
    archive.persist(PersistBatch(projection=projection(archive, minutes=10, stage="resolved")))
    older = PersistBatch(projection=projection(archive, minutes=5, stage="handling"), events=[event(3)])
    archive.persist(older)
    row = archive.get("R-1")
    assert row is not None and row["stage"] == "resolved"
    assert [line["seq"] for line in archive.audit_trail("R-1")] == [3]  # its audit line still counts


def test_final_record_per_closure_is_append_only(archive: Archive) -> None:
    archive.register(registration())
    closed_at = T0 + timedelta(days=2)
    retention = closed_at.replace(year=closed_at.year + 5)  # 002 §6.3 retention by class
    closing = PersistBatch(
        projection=projection(archive, stage="closed", closed_at=closed_at, retention_until=retention),
        events=[event(5, action="close")],
        final=True,
    )
    archive.persist(closing)
    archive.persist(closing)  # replay
    records = archive.archive_records("R-1")
    assert len(records) == 1
    first = records[0]
    assert (first["closure"], first["retention_until"], first["closed_at"]) == (1, retention, closed_at)
    assert first["snapshot"]["stage"] == "closed" and first["ticket"].startswith("KF-")

    reclosed_at = closed_at + timedelta(days=10)
    reclosing = PersistBatch(
        projection=projection(
            archive, minutes=20000, stage="closed", reopen_count=1, closed_at=reclosed_at, retention_until=retention
        ),
        final=True,
    )
    archive.persist(reclosing)
    records = archive.archive_records("R-1")
    assert [record["closure"] for record in records] == [1, 2]
    assert records[0] == first  # the first closure's record is not rewritten
    assert records[1]["closed_at"] == reclosed_at


def test_final_batch_needs_retention(archive: Archive) -> None:
    archive.register(registration())
    with pytest.raises(ValueError, match="retention_until"):
        archive.persist(PersistBatch(projection=projection(archive, stage="closed"), final=True))


def test_list_filters(archive: Archive) -> None:
    now = T0 + timedelta(hours=6)
    states = {
        "A": {"stage": "handling", "next_deadline": now - timedelta(hours=1), "escalation_level": 1, "breached": True},
        "B": {"stage": "handling", "next_deadline": now + timedelta(hours=1), "priority": "urgent", "owner": "agent-7"},
        "C": {"stage": "completed", "next_deadline": now - timedelta(hours=3), "escalation_level": 2},
        "D": {"stage": "classified", "next_deadline": now - timedelta(hours=2), "request_type": "complaint"},
        "E": {"stage": "revisit", "complaint_grade": "major", "escalation_level": 3},
    }
    for request_id, fields in states.items():
        archive.register(registration(request_id))
        archive.persist(PersistBatch(projection=projection(archive, request_id, **fields)))

    def ids(**filters: Any) -> list[str]:
        return [row["request_id"] for row in archive.list_requests(**filters)]

    assert ids(overdue_at=now) == ["D", "A"]  # soonest deadline first; completed C is not overdue
    assert ids(due_before=now + timedelta(hours=2)) == ["D", "A", "B"]
    assert ids(stage="handling") == ["A", "B"]
    assert ids(stage=["classified", "revisit"]) == ["D", "E"]
    assert ids(escalation_level=1) == ["A"]
    assert ids(min_escalation=2) == ["C", "E"]
    assert ids(breached=True) == ["A"]
    assert ids(priority="urgent", owner="agent-7") == ["B"]
    assert ids(request_type="complaint") == ["D"]
    assert ids(complaint_grade="major") == ["E"]
    assert ids(policy_id="service_center", limit=2) == ["A", "B"]


def test_audit_trail_in_seq_order(archive: Archive) -> None:
    archive.register(registration())
    archive.persist(PersistBatch(projection=projection(archive, minutes=1), events=[event(2), event(0)]))
    archive.persist(PersistBatch(projection=projection(archive, minutes=2), events=[event(1), event(2)]))
    trail = archive.audit_trail("R-1")
    assert [line["seq"] for line in trail] == [0, 1, 2]
    assert trail[0]["actor_id"] == "agent-7" and trail[0]["detail"]["before"] == "classified"
    assert trail[0]["detail"]["at"] == T0.isoformat().replace("+00:00", "Z")  # JSON detail keeps times as text


def test_datetimes_round_trip_aware(archive: Archive) -> None:
    beijing = timezone(timedelta(hours=8))
    accepted = datetime(2026, 11, 22, 9, 15, 30, 123456, tzinfo=beijing)
    archive.register(registration(accepted_at=accepted))
    deadline = datetime(2026, 11, 23, 9, 0, tzinfo=beijing)
    archive.persist(PersistBatch(projection=projection(archive, next_deadline=deadline)))
    row = archive.get("R-1")
    assert row is not None
    for name in ("received_at", "accepted_at", "updated_at", "next_deadline"):
        assert row[name].tzinfo is not None and row[name].utcoffset() == timedelta(0), name
    assert row["accepted_at"] == accepted and row["next_deadline"] == deadline
    assert row["ticket"].startswith("KF-20261122-")
    assert archive.list_requests(overdue_at=deadline + timedelta(seconds=1))[0]["request_id"] == "R-1"
    assert archive.list_requests(overdue_at=deadline) == []


def test_activities_register_and_persist(archive: Archive) -> None:
    activities = ArchiveActivities(archive, NOTIFIER)
    env = ActivityEnvironment()
    registered = env.run(activities.register_request, registration())
    assert env.run(activities.register_request, registration()) == registered.model_copy(update={"created": False})
    batch = PersistBatch(projection=projection(archive, stage="classified"), events=[event(0)], notices=[ack_notice()])
    with capture_logs() as logs:
        assert env.run(activities.persist, batch) == 1
        assert env.run(activities.persist, batch) == 0  # a retry queues and logs nothing
    queued = [line for line in logs if line["event"] == "notice queued"]
    assert [(line["key"], line["recipient"]) for line in queued] == [("R-1:ack", "138****5678")]  # masked
