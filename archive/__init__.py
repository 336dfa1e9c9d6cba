"""The archive: everything kefu keeps in SQL (SQLite for development, PostgreSQL in production). store.py holds the
request projection, its audit trail, the notification outbox and the closure records; incidents.py the incidents,
their logs, links and complaint sightings; directory.py the agents and their holds; tables.py, incident_tables.py and
directory_tables.py the SQLModel tables; migrate.py the Alembic migrations. It reads and writes rows only, every
write idempotent: notices arrive rendered by the activities. It imports models, infra.logconfig and (for
directory.py's ranking inside its locking transaction) the pure domain.assignment; never activities or workflows."""
