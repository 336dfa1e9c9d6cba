"""Archive schema migrations (Alembic): what `kefu db upgrade | downgrade REV | current` runs.

Production creates and changes the archive schema only through these migrations (migrations/versions/);
Archive.create_schema() (SQLModel create_all) stays for tests and the demo, which start from an empty database.

The script directory is found next to this package (the repository's migrations/, or the installed `migrations`
package), so it works from any working directory, from an editable install and from a built wheel.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from archive.store import database_url

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


def upgrade(url: str | None = None, revision: str = "head") -> str | None:
    """Apply migrations up to revision (default head); returns the revision the database is at afterwards."""
    _ensure_sqlite_dir(url)
    command.upgrade(config(url), revision)
    return current(url)


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


def head() -> str | None:
    """The newest revision in migrations/versions."""
    return ScriptDirectory.from_config(config()).get_current_head()


def history() -> list[str]:
    """Every revision, oldest first, as `rev: message`."""
    scripts = ScriptDirectory.from_config(config())
    return [f"{s.revision}: {s.doc}" for s in reversed(list(scripts.walk_revisions()))]
