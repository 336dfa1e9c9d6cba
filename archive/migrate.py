"""Archive schema migrations (Alembic): what `kefu db upgrade | downgrade REV | current` runs.

Production creates and changes the archive schema only through these migrations (migrations/versions/). Every
archive kefu creates is at their head: `prepare` (the worker's start: `make run`, the demo, the tests) creates a new
archive and stamps it, and adopts one an older kefu created with create_all and no alembic_version table (its tables
are compared with the migrations, then stamped). `kefu db upgrade` adopts the same way, so it never fails with
"table … already exists" on an archive kefu made.

The script directory is found next to this package (the repository's migrations/, or the installed `migrations`
package), so it works from any working directory, from an editable install and from a built wheel.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, create_engine, inspect, pool, text
from sqlmodel import SQLModel

from archive.store import TABLES, database_url
from infra.logconfig import get_logger

if TYPE_CHECKING:
    from archive.store import Archive

log = get_logger(__name__)
OWN_TABLES = frozenset(table.name for table in TABLES)
LOCK_KEY = 0x6B656675  # "kefu": one PostgreSQL advisory lock, so two workers starting together migrate once

ROOT = Path(__file__).resolve().parent.parent


def _script_location() -> Path:
    beside = ROOT / "migrations"
    if (beside / "env.py").exists():
        return beside
    import migrations  # installed as a package (wheel)

    return Path(migrations.__file__).resolve().parent


def config(url: str | None = None) -> Config:
    """An Alembic Config for the archive at url (else DATABASE_URL, else the development SQLite file)."""
    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.exists() else Config()
    cfg.set_main_option("script_location", str(_script_location()))
    rendered = database_url(url).render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # ConfigParser interpolation
    return cfg


def _ensure_sqlite_dir(url: str | None) -> None:
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]


class SchemaError(RuntimeError):
    """Archive tables that match no migration: kefu will not stamp or migrate them. One line, naming the table."""


def upgrade(url: str | None = None, revision: str = "head") -> str | None:
    """Apply migrations up to revision (default head); returns the revision the database is at afterwards.
    Tables created without migrations (create_all, an older kefu) are adopted first: stamped at the revision they
    match, so no migration tries to create them again."""
    _ensure_sqlite_dir(url)
    engine = create_engine(database_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            _lock(conn)
            adopt(conn)
            _command(conn, url, command.upgrade, revision)
    finally:
        engine.dispose()
    return current(url)


def prepare(archive: Archive) -> str | None:
    """The archive at head as kefu starts (worker: `make run`, the demo, the tests). A database without kefu tables is
    created (create_all, the same tables as the migrations) and stamped at head; one created without migrations is
    adopted; one behind head is upgraded. An archive that matches no migration keeps today's create_all behaviour
    (a warning; `kefu db upgrade` says what differs). Returns the revision afterwards."""
    with archive.engine.begin() as conn:
        _lock(conn)
        version = MigrationContext.configure(conn).get_current_revision()
        if version is None and not _own_tables(conn):
            SQLModel.metadata.create_all(conn, tables=TABLES)  # Archive.create_schema, on this transaction
            _stamp(conn, head())
            return head()
        if version == head() and _own_tables(conn) >= OWN_TABLES:
            return version
        try:
            adopted = adopt(conn)
        except SchemaError as exc:
            log.warning("archive not versioned: tables match no migration; creating missing tables", problem=str(exc))
            SQLModel.metadata.create_all(conn, tables=TABLES)
            return None
        if adopted:
            log.info("archive adopted: its tables match a migration, version stamped", revision=adopted, was=version)
        _command(conn, None, command.upgrade, "head")
        return MigrationContext.configure(conn).get_current_revision()


def adopt(conn: Connection) -> str | None:
    """Stamp the revision the archive's tables match when alembic_version is missing or behind them (tables made by
    create_all). Returns the revision stamped, None when nothing was. SchemaError when they match no revision."""
    present = _own_tables(conn)
    version = MigrationContext.configure(conn).get_current_revision()
    if not present:
        return None
    order = [rev for rev, _ in tables_by_revision()]
    matching = [rev for rev, tables in tables_by_revision() if tables == present]
    if not matching:
        nearest = min(tables_by_revision(), key=lambda item: len(item[1] ^ present))
        missing, extra = sorted(nearest[1] - present), sorted(present - nearest[1])
        raise SchemaError(f"archive tables match no migration (nearest {nearest[0]}: "
                          + "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                                    extra and f"unexpected {', '.join(extra)}"])) + ")")
    found = matching[-1]
    if version is not None and order.index(found) <= order.index(version):
        return None  # alembic_version already accounts for these tables
    expected = dict(_later_changes())[found]  # what migrations after `found` change is not a difference
    differences = [difference for difference in _differences(conn, present) if difference not in expected]
    if differences:
        raise SchemaError(f"archive tables differ from migration {found}: {differences[0]}"
                          + (f" (+{len(differences) - 1} more)" if len(differences) > 1 else ""))
    _stamp(conn, found)
    return found


def tables_by_revision() -> tuple[tuple[str, frozenset[str]], ...]:
    """Each revision, oldest first, with the archive tables the database has there (every revision adds a table,
    so this also tells an archive's revision)."""
    return tuple((revision, tables) for revision, tables, _ in _scratch_revisions())


def _later_changes() -> tuple[tuple[str, frozenset[str]], ...]:
    """Each revision with how its tables differ from the model: what later migrations change (0004 adds columns)."""
    return tuple((revision, changes) for revision, _, changes in _scratch_revisions())


@functools.lru_cache(maxsize=1)
def _scratch_revisions() -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """The migrations run once, revision by revision, on a scratch in-memory SQLite: each revision's tables and
    their differences from the model."""
    engine = create_engine("sqlite://", poolclass=pool.StaticPool)
    found: list[tuple[str, frozenset[str], frozenset[str]]] = []
    try:
        with engine.begin() as conn:
            for revision in [line.split(":")[0] for line in history()]:
                _command(conn, "sqlite://", command.upgrade, revision)
                tables = frozenset(inspect(conn).get_table_names()) & OWN_TABLES
                found.append((revision, tables, frozenset(_differences(conn, tables))))
    finally:
        engine.dispose()
    return tuple(found)


def _differences(conn: Connection, present: frozenset[str]) -> list[str]:
    """How the present tables differ from the model (archive/tables.py), one short phrase each."""
    metadata = MetaData()
    for table in TABLES:
        if table.name in present:
            table.to_metadata(metadata)
    context = MigrationContext.configure(conn, opts={
        "compare_type": True, "include_object": lambda obj, name, type_, *_: type_ != "table" or name in present})
    return [_describe(diff) for diff in compare_metadata(context, metadata)]


def _describe(diff: Any) -> str:
    """An autogenerate difference in words: 'column requests.nps missing', 'index ix_outbox_status unexpected'."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        diff = diff[0]
    verb, _, what = diff[0].partition("_")
    if verb == "modify":
        return f"column {diff[2]}.{diff[3]}: {what} differs"
    obj = diff[-1]
    table = diff[2] if what == "column" else getattr(getattr(obj, "table", None), "name", None)
    name = getattr(obj, "name", None) or "(unnamed)"
    where = f"{table}.{name}" if table and what != "table" else name
    return f"{what} {where} {'missing' if verb == 'add' else 'unexpected'}"


def _own_tables(conn: Connection) -> frozenset[str]:
    return frozenset(inspect(conn).get_table_names()) & OWN_TABLES


def _lock(conn: Connection) -> None:
    """PostgreSQL: one migrating process at a time (released at commit). SQLite serialises writers itself."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _command(conn: Connection, url: str | None, run: Any, revision: str | None) -> None:
    """An Alembic command on this connection (its transaction, its lock; an in-memory database stays the same)."""
    cfg = config(url if url is not None else conn.engine.url.render_as_string(hide_password=False))
    cfg.attributes["connection"] = conn
    run(cfg, revision)


def downgrade(revision: str, url: str | None = None) -> str | None:
    """Revert migrations down to revision ("base" removes every archive table); returns the revision after."""
    command.downgrade(config(url), revision)
    return current(url)


def current(url: str | None = None) -> str | None:
    """The revision the database is at; None for a database migrations never touched."""
    engine = create_engine(database_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


@functools.lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def _stamp(conn: Connection, revision: str | None) -> None:
    """Record the revision in alembic_version (created when missing), on this connection's transaction."""
    MigrationContext.configure(conn).stamp(_scripts(), revision)  # type: ignore[arg-type]


def head() -> str | None:
    """The newest revision in migrations/versions."""
    return _scripts().get_current_head()


def history() -> list[str]:
    """Every revision, oldest first, as `rev: message`."""
    return [f"{s.revision}: {s.doc}" for s in reversed(list(_scripts().walk_revisions()))]
