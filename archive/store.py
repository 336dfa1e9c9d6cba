"""The archive: the only module that talks SQL (SQLite for development, PostgreSQL in production).

It writes and reads rows and nothing else: notices arrive rendered (activities render them first, with the contact
`notice_contact` reads) and the "notice queued" log lines are the activities' too. It imports models, the tables
beside it and infra.logconfig; never activities or workflows.

Every write is idempotent so activity retries and workflow replays never duplicate a row or a notification:
registration by request_id, audit lines by (request_id, seq), outbox rows by notice key, archive records by
(request_id, closure) — INSERT … ON CONFLICT DO NOTHING on both dialects. Audit lines are insert-only and hash-chained
(archive/audit_chain.py, 002 §2.4.3): a different line for a seq that has one (written by a workflow task that
failed after its local activities ran, and was retried with other lines) is added as a further revision, never
written over, and the trail shows the newest task's line.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, Table, create_engine, event, insert, make_url, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, col, select

from archive import access_tables, audit_chain, directory_tables, incident_tables
from archive.audit_chain import INCIDENT_LOG, LOGS, REQUEST_LOG, Head, Log
from archive.tables import ArchiveRecord, AuditHead, AuditRow, OutboxRow, RequestRow
from infra.logconfig import get_logger
from infra.private_files import private_sqlite
from models.records import AuditEvent, Notice, Outgoing, PersistBatch, Registered, Registration, Rejection
from models.status import TERMINAL_STAGES

DEFAULT_URL = "sqlite:///.data/kefu.db"
TICKET_TZ = ZoneInfo("Asia/Shanghai")  # the ticket's date is the acceptance day where the center works
TABLES: list[Table] = [RequestRow.__table__, AuditRow.__table__, OutboxRow.__table__, ArchiveRecord.__table__,  # type: ignore[list-item]
                       AuditHead.__table__, *directory_tables.TABLES, *incident_tables.TABLES, *access_tables.TABLES]
REQUESTS: Table = RequestRow.__table__  # type: ignore[assignment]
AUDIT: Table = AuditRow.__table__  # type: ignore[assignment]
HEADS: Table = AuditHead.__table__  # type: ignore[assignment]
LOG_TABLES: dict[str, Table] = {REQUEST_LOG.name: AUDIT, INCIDENT_LOG.name: incident_tables.IncidentEventRow.__table__}  # type: ignore[dict-item]
CHAIN_COLUMNS = ("prev_hash", "hash", "task_at")  # not part of a trail line as readers see it
OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
# What a notice is rendered with (activities/notify.py Notifier.render): the work order and the customer's contact.
CONTACT_COLUMNS: tuple[str, ...] = ("ticket", "request_type", "priority", "customer_name", "customer_phone",
                                    "customer_email")
log = get_logger(__name__)


def ticket_for(row_id: int, accepted_at: datetime) -> str:
    """Work-order number (002 §2.1.2 work order created): KF-<acceptance day>-<row number>."""
    return f"KF-{accepted_at.astimezone(TICKET_TZ):%Y%m%d}-{row_id:06d}"


def database_url(url: str | None = None) -> URL:
    """url, else DATABASE_URL, else the development SQLite file; bare postgresql:// means psycopg 3."""
    parsed = make_url(url or os.environ.get("DATABASE_URL") or DEFAULT_URL)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    if url.get_backend_name() != "sqlite":
        raise ValueError(f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql+psycopg")
    memory = url.database in (None, "", ":memory:")
    if not memory:
        private_sqlite(Path(url.database))  # type: ignore[arg-type]  # 0600 file (and -wal/-shm), 0700 new folders
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},  # activities run in a thread pool
        poolclass=StaticPool if memory else None,
    )
    if not memory:

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            # Readers (list pages) do not block the writer; writers queue on the 30 s busy timeout.
            dbapi_connection.execute("PRAGMA journal_mode=WAL")

    return engine


def dialect_insert(engine: Engine) -> Any:
    """INSERT with ON CONFLICT (do_nothing / do_update) for the engine's dialect."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Session]:
    """One transaction for a read-then-write. On SQLite it takes the database's write lock at its start (BEGIN
    IMMEDIATE, waiting up to the busy timeout), so such transactions run one at a time; on PostgreSQL the caller
    locks the rows it reads (SELECT … FOR UPDATE)."""
    with Session(engine) as session, session.begin():
        if engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session


def _match(column: Any, wanted: object) -> ColumnElement[bool]:
    """One value or any of several."""
    if isinstance(wanted, Collection) and not isinstance(wanted, str):
        return col(column).in_(list(wanted))
    return col(column) == wanted


class Archive:
    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        self.engine = _engine(self.url)
        self.insert = dialect_insert(self.engine)

    def create_schema(self) -> None:
        """Create missing tables and indexes; existing ones are left alone."""
        SQLModel.metadata.create_all(self.engine, tables=TABLES)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    def queue_notices(self, session: Session, outgoing: Iterable[Outgoing], now: datetime) -> list[Outgoing]:
        """Outbox rows in the caller's transaction; returns the newly queued (a key queued before is a retry or a
        replay and is skipped)."""
        queued: list[Outgoing] = []
        for notice, rendered in outgoing:
            inserted = session.execute(
                self.insert(OUTBOX)
                .values(key=notice.key, request_id=notice.request_id, template=notice.template,
                        audience=notice.audience, recipient=rendered.recipient, channel=rendered.channel,
                        language=notice.language, subject=rendered.subject, body=rendered.body, created_at=now,
                        status="queued")
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(OUTBOX.c.key)
            ).scalar()
            if inserted is not None:
                queued.append((notice, rendered))
        return queued

    # --- writes -------------------------------------------------------------------------------------------

    def register(self, reg: Registration) -> Registered:
        """Create the work order with customer info, description, acceptance time (002 §2.1.2); idempotent."""
        customer = reg.customer
        values = {
            "request_id": reg.request_id,
            "customer_id": customer.id,
            "customer_name": customer.name,
            "customer_phone": customer.phone,
            "customer_email": customer.email,
            "customer_language": customer.language,
            "description": reg.description,
            "amount": reg.amount,
            "received_at": reg.received_at,
            "workflow_id": reg.workflow_id,
            "policy_id": reg.policy_id,
            "policy_version": reg.policy_version,
            "channel": reg.channel,
            "stage": "accepted",
            "breached_clocks": [],
            "accepted_at": reg.accepted_at,
            "updated_at": reg.accepted_at,
        }
        insert = (
            self.insert(REQUESTS)
            .values(values)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(REQUESTS.c.id)
        )
        with self.transaction() as session:
            row_id = session.execute(insert).scalar()
            if row_id is None:  # registered before: a retry, or another worker won the race
                ticket = session.exec(select(RequestRow.ticket).where(RequestRow.request_id == reg.request_id)).one()
                return Registered(ticket=ticket or "", created=False)
            ticket = ticket_for(row_id, reg.accepted_at)
            session.execute(update(REQUESTS).where(REQUESTS.c.id == row_id).values(ticket=ticket))
        return Registered(ticket=ticket, created=True)

    def reject(self, rejection: Rejection) -> bool:
        """A `rejected` row for a refused intake (no ticket, no customer data); False when one was written before.
        A row the request id already has (a real request) is never touched."""
        values = {"request_id": rejection.request_id, "customer_id": "", "customer_name": "", "description": "",
                  "received_at": rejection.at, "workflow_id": rejection.workflow_id, "policy_id": rejection.policy_id,
                  "policy_version": 0, "channel": rejection.channel, "stage": "rejected",
                  "sub_state": rejection.reason[:32], "outcome": "rejected", "breached_clocks": [],
                  "accepted_at": rejection.at, "updated_at": rejection.at}
        with self.transaction() as session:
            return session.execute(self.insert(REQUESTS).values(values)
                                   .on_conflict_do_nothing(index_elements=["request_id"])
                                   .returning(REQUESTS.c.id)).scalar() is not None

    def persist(self, batch: PersistBatch, rendered: Sequence[Outgoing] = ()) -> list[Outgoing]:
        """Write one transition in one transaction: projection, audit lines, the batch's notices as `rendered`
        (every one of batch.notices, in order, rendered for `notice_contact`), the archive record when final.
        Returns the notices newly queued; the caller logs them once this returns (committed)."""
        projection = batch.projection
        request_id = projection.request_id
        _check(batch)
        check_rendered(batch.notices, rendered, request_id)
        now = datetime.now(UTC)
        with write_transaction(self.engine) as session:
            # The request row first, locked (on SQLite, BEGIN IMMEDIATE): its audit chain grows one writer at a time.
            row = session.exec(select(RequestRow).where(RequestRow.request_id == request_id).with_for_update()
                               ).one_or_none()
            if row is None:
                raise _unregistered(request_id)
            # A stale batch (older updated_at) must not win.
            applied = session.execute(
                update(REQUESTS)
                .where(REQUESTS.c.request_id == request_id, REQUESTS.c.updated_at <= projection.updated_at)
                .values(projection.model_dump(exclude={"request_id", "ticket"}))
            ).rowcount
            if not applied:
                log.warning("stale projection not applied", request_id=request_id, updated_at=projection.updated_at)
            if batch.events:  # 000 §3.2 operation log; 002 §2.4.3 records not modified or deleted
                self._append_audit(session, request_id, batch.events, projection.updated_at)
            queued = self.queue_notices(session, rendered, now)
            if batch.final:  # 000 §1.2 archived for traceability; 002 §6.3 retention by class
                session.execute(
                    self.insert(ArchiveRecord.__table__)
                    .values(
                        request_id=request_id,
                        closure=projection.reopen_count + 1,
                        ticket=row.ticket,
                        policy_id=projection.policy_id,
                        policy_version=projection.policy_version,
                        stage=projection.stage,
                        closed_at=projection.closed_at,
                        retention_until=projection.retention_until,
                        archived_at=now,
                        snapshot=projection.model_dump(mode="json"),
                    )
                    .on_conflict_do_nothing(index_elements=["request_id", "closure"])
                )
        return queued

    def _append_audit(self, session: Session, request_id: str, events: Sequence[AuditEvent],
                      task_at: datetime) -> None:
        """The batch's audit lines, insert-only. A line already there (a retry, a replay) is skipped. A different
        line for a seq that has one comes from a workflow task that failed after this activity ran and was
        retried (its history discarded, events numbered otherwise, e.g. a signal first): it is added as the seq's
        next revision, and the trail shows the line of the newest task (task_at: the batch's updated_at,
        deterministic on replay and later for a retry). The caller holds the request row's lock."""
        existing: dict[int, list[dict[str, Any]]] = {}
        query = select(AUDIT).where(AUDIT.c.request_id == request_id, AUDIT.c.seq.in_({e.seq for e in events}))
        for found in session.execute(query).mappings():
            existing.setdefault(found["seq"], []).append(dict(found))
        lines: list[dict[str, Any]] = []
        for written in events:
            line = written.model_dump(mode="json") | {"at": written.at, "task_at": task_at}
            rows = existing.setdefault(written.seq, [])
            current = audit_chain.effective(rows)
            if current is not None and audit_chain.same_line(REQUEST_LOG, current, line):
                continue
            if any(audit_chain.same_line(REQUEST_LOG, row, line) and row["task_at"] == task_at for row in rows):
                continue  # a retry of an older task's write, kept as superseded before
            line["revision"] = max((row["revision"] for row in rows), default=-1) + 1
            if line["revision"]:
                newest = audit_chain.effective([*rows, line]) is line
                log.info("audit line superseded" if newest else "audit line of an older task kept as superseded",
                         request_id=request_id, seq=written.seq, revision=line["revision"])
            rows.append(line)
            lines.append(line)
        self.append_chain(session, REQUEST_LOG, request_id, lines)

    def append_chain(self, session: Session, chain: Log, owner_id: str, lines: Sequence[dict[str, Any]]) -> None:
        """Insert lines at the end of the owner's chain, sealed (prev_hash, hash), and move its head in audit_heads,
        in the caller's transaction; the caller holds the owner row's lock (SELECT … FOR UPDATE; BEGIN IMMEDIATE
        on SQLite), so no other writer reads the same head."""
        if not lines:
            return
        where = (HEADS.c.log == chain.name, HEADS.c.owner_id == owner_id)
        known = session.execute(select(HEADS.c.lines, HEADS.c.hash).where(*where)).one_or_none()
        head = Head(known.lines, known.hash) if known else audit_chain.EMPTY
        sealed, head = audit_chain.seal(chain, head, lines)
        session.execute(insert(LOG_TABLES[chain.name]), sealed)  # plain INSERT: a clash is an error, never skipped
        if known:
            session.execute(update(HEADS).where(*where).values(lines=head.lines, hash=head.hash))
        else:
            session.execute(insert(HEADS).values(log=chain.name, owner_id=owner_id, lines=head.lines, hash=head.hash))

    # --- reads --------------------------------------------------------------------------------------------

    def get(self, request_id: str) -> dict[str, Any] | None:
        """Projection and registration (with the customer's contact) of one request."""
        with Session(self.engine) as session:
            row = session.exec(select(RequestRow).where(RequestRow.request_id == request_id)).one_or_none()
            return _public(row) if row else None

    def notice_contact(self, batch: PersistBatch) -> dict[str, Any]:
        """CONTACT_COLUMNS for rendering the batch's notices, as persist() leaves the row: the registration from
        the archive, request_type and priority from the batch's projection unless it is stale (persist does not
        apply a projection older than the row). A malformed batch is refused first, as persist() refuses it."""
        projection = batch.projection
        _check(batch)
        row = self.get(projection.request_id)
        if row is None:
            raise _unregistered(projection.request_id)
        contact = {name: row[name] for name in CONTACT_COLUMNS}
        if row["updated_at"] <= projection.updated_at:
            contact |= {"request_type": projection.request_type, "priority": projection.priority}
        return contact

    def list_requests(
        self,
        *,
        stage: str | Collection[str] | None = None,
        request_type: str | Collection[str] | None = None,
        priority: str | Collection[str] | None = None,
        policy_id: str | Collection[str] | None = None,
        owner: str | Collection[str] | None = None,
        escalation_level: int | Collection[int] | None = None,
        min_escalation: int | None = None,
        overdue_at: datetime | None = None,
        due_before: datetime | None = None,
        breached: bool | None = None,
        complaint_grade: str | Collection[str] | None = None,
        limit: int = 200,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> list[dict[str, Any]]:
        """List page from the projection. overdue_at=now: open requests whose next deadline has passed;
        due_before=t: open requests due before t. Deadline lists come soonest first, others in ticket order.
        where: further conditions (archive/reads.py: what the reader may see)."""
        equal = {
            RequestRow.stage: stage,
            RequestRow.request_type: request_type,
            RequestRow.priority: priority,
            RequestRow.policy_id: policy_id,
            RequestRow.owner: owner,
            RequestRow.escalation_level: escalation_level,
            RequestRow.breached: breached,
            RequestRow.complaint_grade: complaint_grade,
        }
        where = [*where, *(_match(column, wanted) for column, wanted in equal.items() if wanted is not None)]
        if min_escalation is not None:
            where.append(col(RequestRow.escalation_level) >= min_escalation)
        by_deadline = False
        for moment in (overdue_at, due_before):
            if moment is not None:
                where += [col(RequestRow.next_deadline) < moment, col(RequestRow.stage).not_in(TERMINAL_STAGES)]
                by_deadline = True
        order = [col(RequestRow.next_deadline), col(RequestRow.id)] if by_deadline else [col(RequestRow.id)]
        with Session(self.engine) as session:
            rows = session.exec(select(RequestRow).where(*where).order_by(*order).limit(limit)).all()
            return [_public(row) for row in rows]

    def rows_between(self, start: datetime, end: datetime, policy_id: str | None = None) -> list[dict[str, Any]]:
        """Projection rows of the requests accepted in [start, end), acceptance order (for KPI reports)."""
        where = [col(RequestRow.accepted_at) >= start, col(RequestRow.accepted_at) < end,
                 col(RequestRow.stage) != "rejected"]  # a refused intake was never a request
        if policy_id is not None:
            where.append(RequestRow.policy_id == policy_id)
        with Session(self.engine) as session:
            rows = session.exec(select(RequestRow).where(*where).order_by(col(RequestRow.accepted_at))).all()
            return [_public(row) for row in rows]

    def audit_trail(self, request_id: str) -> list[dict[str, Any]]:
        """The request's operation log in seq order, one line per seq: the one the newest workflow task wrote
        (superseded revisions stay in the archive; audit_chains reads every row)."""
        query = select(AUDIT).where(AUDIT.c.request_id == request_id).order_by(AUDIT.c.seq, AUDIT.c.revision)
        with Session(self.engine) as session:
            rows = [dict(row) for row in session.execute(query).mappings()]
        by_seq: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            by_seq.setdefault(row["seq"], []).append(row)
        lines = (audit_chain.effective(versions) for versions in by_seq.values())
        return [{k: v for k, v in line.items() if k != "id" and k not in CHAIN_COLUMNS} for line in lines if line]

    def audit_chains(self, owner_id: str | None = None) -> Iterator[tuple[Log, str, list[dict[str, Any]], Head | None]]:
        """Every audit chain (requests' and incidents'), or the chains of one request or incident id: (log, owner
        id, its rows in the order they were written, its audit_heads record). For archive/audit_chain.verify_chain;
        streams, so a large archive is never in memory at once."""
        with Session(self.engine) as session:
            heads_query = select(HEADS)
            if owner_id is not None:
                heads_query = heads_query.where(HEADS.c.owner_id == owner_id)
            heads = {(h.log, h.owner_id): Head(h.lines, h.hash) for h in session.execute(heads_query)}
            for name, table in LOG_TABLES.items():
                chain, owner = LOGS[name], table.c[LOGS[name].owner]
                query = select(table).order_by(owner, table.c.id).execution_options(yield_per=1000)
                if owner_id is not None:
                    query = query.where(owner == owner_id)
                rows = session.execute(query).mappings()
                for current, group in itertools.groupby(rows, key=lambda row: row[chain.owner]):
                    yield chain, current, [dict(row) for row in group], heads.pop((name, current), None)
                for (log_name, orphan), head in sorted(heads.items()):
                    if log_name == name:  # a head whose every row is gone
                        yield chain, orphan, [], head

    def outbox(self, request_id: str | None = None) -> list[dict[str, Any]]:
        query = select(OutboxRow).order_by(col(OutboxRow.id))
        if request_id is not None:
            query = query.where(OutboxRow.request_id == request_id)
        with Session(self.engine) as session:
            return [_public(row) for row in session.exec(query).all()]

    def archive_records(self, request_id: str) -> list[dict[str, Any]]:
        """Every closure's final record, first closure first."""
        query = select(ArchiveRecord).where(ArchiveRecord.request_id == request_id).order_by(col(ArchiveRecord.closure))
        with Session(self.engine) as session:
            return [_public(row) for row in session.exec(query).all()]


def _public(row: SQLModel) -> dict[str, Any]:
    """A row as a plain dict in column order, without the surrogate id."""
    return {column.name: getattr(row, column.name) for column in row.__table__.columns if column.name != "id"}  # type: ignore[attr-defined]


def _unregistered(request_id: str) -> ValueError:
    return ValueError(f"request {request_id!r} is not registered: register_request must run first")


def check_rendered(notices: Sequence[Notice], rendered: Sequence[Outgoing], owner: str) -> None:
    """`rendered` must be exactly `notices`, in order, each with its rendered message."""
    if [notice for notice, _ in rendered] != list(notices):
        raise ValueError(f"batch for {owner!r}: its notices must be rendered, each once and in order, before they "
                         "are queued")


def _check(batch: PersistBatch) -> None:
    request_id = batch.projection.request_id
    strays = {item.request_id for item in [*batch.events, *batch.notices]} - {request_id}
    if strays:
        raise ValueError(f"batch for {request_id!r} carries events or notices of {sorted(strays)}")
    if batch.final and (batch.projection.closed_at is None or batch.projection.retention_until is None):
        raise ValueError(f"final batch for {request_id!r} needs closed_at and retention_until (002 §6.3)")
