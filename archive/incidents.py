"""Archive writes and reads of incidents (突发事件, SEEDS §11), beside archive/store.py and in its manner: SQL only
(notices arrive rendered by activities/incidents.py), and every write is idempotent (INSERT … ON CONFLICT DO NOTHING
on SQLite and PostgreSQL, or a look first under the incident row's lock) so activity retries and workflow replays
never duplicate an audit line, a link or a notice. The incident's operation log is insert-only and hash-chained like
a request's (archive/audit_chain.py). Imports models and the archive beside it; never activities or workflows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive.audit_chain import INCIDENT_LOG
from archive.incident_tables import ComplaintSighting, IncidentEventRow, IncidentLinkRow, IncidentRow
from archive.store import CHAIN_COLUMNS, CONTACT_COLUMNS, REQUESTS, Archive, check_rendered, write_transaction
from models.incident import ComplaintSeen, IncidentBatch
from models.records import Outgoing

INCIDENTS = IncidentRow.__table__
EVENTS = IncidentEventRow.__table__
LINKS = IncidentLinkRow.__table__
SIGHTINGS = ComplaintSighting.__table__
# A customer's first linked request: what an incident notice to them is keyed, addressed and rendered with.
FIRST_CONTACT_COLUMNS: tuple[str, ...] = ("request_id", "customer_id", "customer_language", *CONTACT_COLUMNS)


def persist_incident(archive: Archive, batch: IncidentBatch, rendered: Sequence[Outgoing] = ()) -> list[Outgoing]:
    """Projection, audit lines, links and the batch's internal notices (`rendered`: every one of batch.notices,
    in order, with its message) in one transaction; returns the notices newly queued."""
    projection = batch.projection
    incident_id = projection.incident_id
    check_rendered(batch.notices, rendered, incident_id)
    values = projection.model_dump(exclude={"broadcast_pending"}) | {"updated_at": batch.updated_at}
    now = datetime.now(UTC)
    upsert = archive.insert(INCIDENTS).values(values)
    upsert = upsert.on_conflict_do_update(
        index_elements=["incident_id"], set_={k: upsert.excluded[k] for k in values if k != "incident_id"},
        where=INCIDENTS.c.updated_at <= upsert.excluded.updated_at)  # a stale batch must not win
    with write_transaction(archive.engine) as session:  # BEGIN IMMEDIATE on SQLite: one chain writer at a time
        session.execute(upsert)
        if batch.events:  # 000 §3.2 operation log; 002 §2.4.3 never modified or deleted
            session.execute(select(INCIDENTS.c.id).where(INCIDENTS.c.incident_id == incident_id).with_for_update())
            seqs = {e.seq for e in batch.events}
            written = set(session.execute(select(EVENTS.c.seq).where(EVENTS.c.incident_id == incident_id,
                                                                     EVENTS.c.seq.in_(seqs))).scalars())
            new: dict[int, dict[str, Any]] = {}
            for e in batch.events:  # the first line for a seq stays: a retry or a replay adds nothing
                if e.seq not in written:
                    new.setdefault(e.seq, e.model_dump(mode="json") | {"at": e.at})
            archive.append_chain(session, INCIDENT_LOG, incident_id, list(new.values()))
        if batch.links:
            session.execute(archive.insert(LINKS)
                            .values([{"incident_id": incident_id, "request_id": r, "linked_at": batch.updated_at}
                                     for r in batch.links])
                            .on_conflict_do_nothing(index_elements=["incident_id", "request_id"]))
        return archive.queue_notices(session, rendered, now)


def queue_customer_notices(archive: Archive, rendered: Iterable[Outgoing]) -> list[Outgoing]:
    """The rendered notices to the linked requests' customers (003 §6.4) in one transaction; returns the newly
    queued (their keys make a retry or a replay queue nothing twice)."""
    with archive.transaction() as session:
        return archive.queue_notices(session, rendered, datetime.now(UTC))


def record_complaint(archive: Archive, seen: ComplaintSeen, since: datetime,
                     limit: int) -> tuple[int, list[str]]:
    """Record one sighting (idempotent by request id); return the distinct customers of the same policy and
    category seen since `since`, and those sightings' request ids (oldest first, at most `limit`, newest kept)."""
    category = seen.category or ""
    window = (SIGHTINGS.c.policy_id == seen.policy, SIGHTINGS.c.category == category, SIGHTINGS.c.seen_at >= since,
              SIGHTINGS.c.seen_at <= seen.at)
    with archive.transaction() as session:
        session.execute(archive.insert(SIGHTINGS)
                        .values(request_id=seen.request_id, policy_id=seen.policy, category=category,
                                request_type=seen.request_type, customer_id=seen.customer_id, seen_at=seen.at)
                        .on_conflict_do_nothing(index_elements=["request_id"]))
        customers = session.execute(select(func.count(func.distinct(SIGHTINGS.c.customer_id))).where(*window)).scalar()
        ids = session.execute(select(SIGHTINGS.c.request_id).where(*window)
                              .order_by(SIGHTINGS.c.seen_at.desc(), SIGHTINGS.c.id.desc()).limit(limit)).scalars()
        return int(customers or 0), list(reversed(list(ids)))


# --- reads ----------------------------------------------------------------------------------------------------------

def _rows(archive: Archive, query: Any) -> list[dict[str, Any]]:
    with Session(archive.engine) as session:
        return [{k: v for k, v in row.items() if k != "id"} for row in session.execute(query).mappings().all()]


def list_incidents(archive: Archive, stage: str | Iterable[str] | None = None,
                   limit: int = 200) -> list[dict[str, Any]]:
    """Incidents, newest declaration first."""
    query = select(INCIDENTS).order_by(INCIDENTS.c.declared_at.desc(), INCIDENTS.c.id.desc()).limit(limit)
    if stage is not None:
        query = query.where(INCIDENTS.c.stage.in_([stage] if isinstance(stage, str) else list(stage)))
    return _rows(archive, query)


def get_incident(archive: Archive, incident_id: str) -> dict[str, Any] | None:
    rows = _rows(archive, select(INCIDENTS).where(INCIDENTS.c.incident_id == incident_id))
    return rows[0] if rows else None


def incident_trail(archive: Archive, incident_id: str) -> list[dict[str, Any]]:
    rows = _rows(archive, select(EVENTS).where(EVENTS.c.incident_id == incident_id).order_by(EVENTS.c.seq))
    return [{k: v for k, v in row.items() if k not in CHAIN_COLUMNS} for row in rows]


def first_contacts(archive: Archive, request_ids: Iterable[str]) -> list[dict[str, Any]]:
    """FIRST_CONTACT_COLUMNS of each distinct customer's first registered request among `request_ids`, in
    registration order (003 §6.4: a customer hears of an incident event once, at the contact of that request)."""
    query = (select(*(REQUESTS.c[name] for name in FIRST_CONTACT_COLUMNS))
             .where(REQUESTS.c.request_id.in_(list(request_ids))).order_by(REQUESTS.c.id))
    firsts: dict[str, dict[str, Any]] = {}
    for row in _rows(archive, query):
        firsts.setdefault(row["customer_id"], row)
    return list(firsts.values())


def linked_requests(archive: Archive, incident_id: str) -> list[str]:
    query = select(LINKS.c.request_id).where(LINKS.c.incident_id == incident_id).order_by(LINKS.c.id)
    with Session(archive.engine) as session:
        return list(session.execute(query).scalars())
