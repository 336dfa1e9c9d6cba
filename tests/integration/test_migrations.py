"""Archive migrations (issue 9): `kefu db upgrade` creates exactly archive/tables.py's schema, on SQLite and on the
local PostgreSQL, and `kefu db downgrade base` removes it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, pool

from archive import migrate
from archive.store import TABLES, Archive, database_url

pytestmark = pytest.mark.integration
OWN = {table.name for table in TABLES}


def _metadata() -> MetaData:
    md = MetaData()
    for table in TABLES:
        table.to_metadata(md)
    return md


def _diff(url: str) -> list[object]:
    engine = create_engine(database_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(ctx, _metadata())
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(database_url(url), poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


# initial, agent directory, incidents (issue 6), audit chain and access log (issue 14)
REVISIONS = ("0001", "0002", "0003", "0004", "0005")
HEAD = REVISIONS[-1]


def test_revisions_form_one_line_of_history() -> None:
    assert migrate.head() == HEAD
    history = migrate.history()
    assert [line.split(":")[0] for line in history] == list(REVISIONS)
    assert history[0] == ("0001: initial archive schema: requests, audit_events, outbox, archive_records "
                          "(archive/tables.py as of issue 9)")


def test_upgrade_creates_exactly_the_model_tables_then_downgrade_removes_them(db_url: str) -> None:
    assert migrate.current(db_url) is None
    assert migrate.upgrade(db_url) == migrate.head()
    assert _tables(db_url) == OWN | {"alembic_version"}
    assert _diff(db_url) == [], "autogenerate finds differences between the migrations and archive/tables.py"
    assert migrate.upgrade(db_url) == migrate.head()  # idempotent
    assert migrate.downgrade("base", db_url) is None
    assert _tables(db_url) == {"alembic_version"}
    assert migrate.upgrade(db_url) == HEAD  # and up again
    assert _diff(db_url) == []


def test_migrated_archive_works(db_url: str) -> None:
    """The store's idempotent writes (ON CONFLICT on the unique constraints) work against the migrated schema."""
    from tests.integration.test_archive import registration

    migrate.upgrade(db_url)
    store = Archive(db_url)
    try:
        first = store.register(registration("mig-1"))
        again = store.register(registration("mig-1"))
        assert first.created and not again.created and first.ticket == again.ticket
    finally:
        store.close()


def test_create_all_matches_migrations(sqlite_url: str) -> None:
    """create_schema (tests, demo) and the migrations agree: a create_all database shows no diff either."""
    Archive(sqlite_url).create_schema()
    assert _diff(sqlite_url) == []


def test_sqlite_keeps_ticket_numbers_unique(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'requests'").scalar()
    engine.dispose()
    assert "AUTOINCREMENT" in ddl


def test_kefu_db_commands(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """`kefu db upgrade | current | downgrade` through the CLI, from another working directory."""
    from cli import main as starter

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.chdir(tmp_path)

    def kefu(*args: str) -> tuple[int, str, str]:
        code = starter.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = kefu("db", "current")
    assert code == 0, err
    assert out.strip() == f"none (head {HEAD})"
    code, out, err = kefu("db", "upgrade")
    assert (code, out.strip()) == (0, f"{HEAD} (head {HEAD})"), err
    assert kefu("db", "current")[1].startswith(HEAD)
    assert json.loads(kefu("db", "current", "--json")[1]) == {"current": HEAD, "head": HEAD}
    code, out, err = kefu("db", "downgrade", "base")
    assert code == 0, err
    assert _tables(sqlite_url) == {"alembic_version"}
    code, _, err = kefu("db", "downgrade")
    assert code == 2 and err.startswith("kefu db: downgrade: give the target revision")
    code, _, err = kefu("db", "upgrade", "nonsense")
    assert code == 2 and err.startswith("kefu db:") and len(err.strip().splitlines()) == 1


# --- issue 15: every archive kefu creates is at head, and `kefu db upgrade` is idempotent on all of them -------------
def _kefu(url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
          ) -> tuple[int, str, str]:
    from cli import main as starter

    monkeypatch.setenv("DATABASE_URL", url)
    code = starter.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_archive_kefu_creates_on_start_is_at_head(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The worker's start (make run, the demo, the tests) creates the archive at head: doctor is content and
    `kefu db upgrade` has nothing to do (it used to fail with "table requests already exists")."""
    from cli.doctor import check_database

    store = Archive(db_url)
    try:
        assert migrate.prepare(store) == HEAD
        assert migrate.prepare(store) == HEAD  # a restart
    finally:
        store.close()
    assert migrate.current(db_url) == HEAD and _diff(db_url) == []
    assert check_database(db_url).ok
    assert _kefu(db_url, monkeypatch, capsys, "db", "upgrade")[:2] == (0, f"{HEAD} (head {HEAD})\n")


def test_db_upgrade_adopts_an_archive_an_older_kefu_created(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """create_schema without alembic_version (an older `make run` or demo): the tables match head, so upgrade stamps
    it and keeps every row; a second upgrade is a no-op."""
    from tests.integration.test_archive import registration

    store = Archive(db_url)
    try:
        store.create_schema()
        ticket = store.register(registration("old-1")).ticket
    finally:
        store.close()
    assert migrate.current(db_url) is None
    for _ in range(2):
        code, out, err = _kefu(db_url, monkeypatch, capsys, "db", "upgrade")
        assert (code, out.strip()) == (0, f"{HEAD} (head {HEAD})"), err
    store = Archive(db_url)
    try:
        assert store.get("old-1")["ticket"] == ticket  # type: ignore[index]
    finally:
        store.close()
    assert _diff(db_url) == []


def _older_kefu(url: str, tables_of: str, version: str | None) -> None:
    """The archive an older kefu left: the tables of revision `tables_of` as it created them, stamped `version`
    (None: no alembic_version, create_all only)."""
    from sqlalchemy import text

    migrate.upgrade(url, tables_of)
    engine = create_engine(database_url(url), poolclass=pool.NullPool)
    with engine.begin() as conn:
        if version is None:
            conn.execute(text("DROP TABLE alembic_version"))
        else:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
    engine.dispose()


def test_db_upgrade_adopts_an_older_schema_then_migrates_it(sqlite_url: str) -> None:
    """An archive from before the agent directory (only 0001's tables, no version) is stamped 0001 and upgraded."""
    _older_kefu(sqlite_url, "0001", None)
    assert migrate.current(sqlite_url) is None
    assert migrate.upgrade(sqlite_url) == HEAD
    assert _tables(sqlite_url) == OWN | {"alembic_version"} and _diff(sqlite_url) == []


def test_db_upgrade_stamps_past_tables_create_all_added_to_a_versioned_archive(sqlite_url: str) -> None:
    """Versioned at 0002, then an older worker's create_all added the incident tables (as 0003 has them): upgrade
    stamps 0003 and migrates on, not fails."""
    _older_kefu(sqlite_url, "0003", "0002")
    assert migrate.current(sqlite_url) == "0002"
    assert migrate.upgrade(sqlite_url) == HEAD
    assert _diff(sqlite_url) == []


def test_an_archive_that_matches_no_migration_is_refused_in_one_line(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import text

    store = Archive(sqlite_url)
    store.create_schema()
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE requests DROP COLUMN nps"))
    store.close()
    code, _, err = _kefu(sqlite_url, monkeypatch, capsys, "db", "upgrade")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"kefu db: archive tables differ from migration {HEAD}: column requests.nps missing")
    assert migrate.current(sqlite_url) is None  # nothing stamped


# --- issue 14: 0004 chains the audit lines an upgraded archive already holds ----------------------------------------
def test_0004_adds_and_backfills_the_chain_so_verify_holds(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Lines written at 0003 (as its store wrote them) are chained in the order written, each chain's head is
    recorded, `kefu audit verify --all` holds, new lines chain on, and an edit afterwards is caught."""
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from archive.tables import JSONDoc, UTCDateTime
    from models.records import PersistBatch
    from tests.integration.test_archive import event, projection, registration

    assert migrate.upgrade(db_url, "0003") == "0003"
    at = datetime(2026, 11, 21, 17, 30, 0, 123456, tzinfo=UTC)

    def columns_of(*owner: str) -> list[sa.ColumnClause]:
        return [*map(sa.column, (*owner, "seq", "actor_id", "actor_role", "action", "rejected")),
                sa.column("at", UTCDateTime()), sa.column("detail", JSONDoc)]

    audit = sa.table("audit_events", *columns_of("request_id", "stage"))
    incident = sa.table("incident_events", *columns_of("incident_id"))
    line = {"actor_id": "agent-7", "actor_role": "agent", "action": "note", "rejected": False,
            "detail": {"fraction": 0.5, "text": "账单明细", "amount": 1e20}}
    engine = create_engine(database_url(db_url), poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.insert(audit), [line | {"request_id": r, "stage": "handling", "seq": s, "at": at + timedelta(s)}
                                        for r, count in (("old-1", 3), ("old-2", 2)) for s in range(count)])
        conn.execute(sa.insert(incident), [line | {"incident_id": "INC-old", "seq": s, "at": at} for s in range(2)])
    engine.dispose()

    assert migrate.upgrade(db_url) == HEAD and _diff(db_url) == []
    engine = create_engine(database_url(db_url), poolclass=pool.NullPool)
    try:
        columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in ("audit_events", "incident_events")}
        with engine.connect() as conn:
            unchained = conn.execute(sa.text("SELECT count(*) FROM audit_events WHERE hash IS NULL OR revision <> 0"
                                             )).scalar()
            heads = conn.execute(sa.text("SELECT log, owner_id, lines FROM audit_heads ORDER BY owner_id")).all()
    finally:
        engine.dispose()
    assert {"revision", "task_at", "prev_hash", "hash"} <= columns["audit_events"]
    assert {"prev_hash", "hash"} <= columns["incident_events"]
    assert unchained == 0
    assert [tuple(h) for h in heads] == [("incident", "INC-old", 2), ("request", "old-1", 3), ("request", "old-2", 2)]
    code, out, err = _kefu(db_url, monkeypatch, capsys, "audit", "verify", "--all")
    assert (code, out.strip()) == (0, "3 chain(s) hold: 7 line(s), 0 superseded"), err

    store = Archive(db_url)
    try:
        store.register(registration("old-1"))
        store.persist(PersistBatch(projection=projection(store, "old-1"), events=[event(3, "old-1")]))
        capsys.readouterr()
        code, out, err = _kefu(db_url, monkeypatch, capsys, "audit", "verify", "old-1")
        assert (code, out.strip()) == (0, "1 chain(s) hold: 4 line(s), 0 superseded"), err
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_events SET action = 'erased' WHERE request_id = 'old-2' AND seq = 0"))
    finally:
        store.close()
    code, out, _ = _kefu(db_url, monkeypatch, capsys, "audit", "verify", "--all")
    assert code == 2 and out.splitlines()[0].startswith("request old-2 seq 0: changed:")


def test_an_unversioned_archive_of_0003_is_adopted_then_chained(sqlite_url: str) -> None:
    """create_all by a kefu of 0003 (no version): its tables differ from the model only by what 0004 adds."""
    _older_kefu(sqlite_url, "0003", None)
    assert migrate.upgrade(sqlite_url) == HEAD and _diff(sqlite_url) == []


def test_0004_downgrades_unless_superseded_lines_would_be_lost(sqlite_url: str) -> None:
    from models.records import PersistBatch
    from tests.integration.test_archive import event, projection, registration

    migrate.upgrade(sqlite_url)
    store = Archive(sqlite_url)
    store.register(registration())
    store.persist(PersistBatch(projection=projection(store, minutes=1), events=[event(0, action="a")]))
    assert migrate.downgrade("0003", sqlite_url) == "0003"
    assert migrate.upgrade(sqlite_url) == HEAD  # chained again
    store.persist(PersistBatch(projection=projection(store, minutes=2), events=[event(0, action="b")]))
    with pytest.raises(RuntimeError, match=r"audit_events: 1 superseded lines \(revision > 0\)"):
        migrate.downgrade("0003", sqlite_url)
    # 0005 (the access log) stepped down first; 0004 refused, so the archive stays at 0004 with every line
    assert migrate.current(sqlite_url) == "0004" and len(store.audit_trail("R-1")) == 1
    store.close()
