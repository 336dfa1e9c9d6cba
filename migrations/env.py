"""Alembic environment for the kefu archive.

The URL is the `sqlalchemy.url` option archive/migrate.py sets, else DATABASE_URL, else the development SQLite file
(archive.store.database_url). target_metadata is the archive's tables only, so autogenerate never proposes to drop
tables other software keeps in the same database.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import MetaData, create_engine, pool

from archive.store import TABLES, database_url

config = context.config

target_metadata = MetaData()
for _table in TABLES:
    _table.to_metadata(target_metadata)
OWN_TABLES = {table.name for table in TABLES}


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in OWN_TABLES
    return True


def _url() -> Any:
    return database_url(config.get_main_option("sqlalchemy.url") or None)


def run_migrations_offline() -> None:
    """`kefu db upgrade --sql`-style: emit the SQL instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      include_object=_include_object, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # a caller (tests, archive.migrate) lends its own connection
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Any) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, include_object=_include_object,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
