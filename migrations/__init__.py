"""Alembic migrations of the kefu archive (archive/tables.py); run them with `kefu db upgrade` (archive/migrate.py)."""
