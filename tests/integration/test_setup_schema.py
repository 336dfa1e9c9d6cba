"""deploy/temporal/setup-schema.sh (the compose service `temporal-schema`) against the local PostgreSQL, with a
stand-in `temporal-sql-tool` that records its calls (and creates the database on `create`): databases are created
only when missing, then each schema is set up and updated from its versioned folder; a second run creates nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "temporal" / "setup-schema.sh"
PG = {"SQL_HOST": "127.0.0.1", "SQL_PORT": "5432", "SQL_USER": "postgres", "SQL_PASSWORD": ""}

STUB = """#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$CALLS"
if [ "${3:-}" = create ]; then
  PGPASSWORD="$SQL_PASSWORD" psql -q -h "$SQL_HOST" -p "$SQL_PORT" -U "$SQL_USER" -d postgres \
    -c "CREATE DATABASE \\"$2\\""
fi
"""


def postgres_up() -> bool:
    if not shutil.which("pg_isready") or not shutil.which("psql"):
        return False
    return subprocess.run(["pg_isready", "-q", "-h", PG["SQL_HOST"], "-p", PG["SQL_PORT"]]).returncode == 0


def psql(sql: str) -> None:
    subprocess.run(["psql", "-q", "-h", PG["SQL_HOST"], "-p", PG["SQL_PORT"], "-U", PG["SQL_USER"], "-d",
                    "postgres", "-c", sql], check=True, capture_output=True)


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    if not postgres_up():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 with psql and pg_isready")
    names = (f"kefu_t_{uuid.uuid4().hex[:8]}", f"kefu_v_{uuid.uuid4().hex[:8]}")
    yield names
    for name in names:
        psql(f'DROP DATABASE IF EXISTS "{name}"')


def run(tmp_path: Path, temporal_db: str, visibility_db: str) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / "temporal-sql-tool"
    tool.write_text(STUB)
    tool.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    env = {**os.environ, **PG, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "TEMPORAL_DB": temporal_db, "VISIBILITY_DB": visibility_db, "SCHEMA_ROOT": "/schema/v12"}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"temporal schema ready: {temporal_db}, {visibility_db}" in result.stdout
    return calls.read_text().splitlines()


def test_script_is_strict() -> None:
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_creates_then_sets_up_and_updates(tmp_path: Path, databases: tuple[str, str]) -> None:
    temporal_db, visibility_db = databases
    assert run(tmp_path, temporal_db, visibility_db) == [
        f"--db {temporal_db} create",
        f"--db {temporal_db} setup-schema -v 0.0",
        f"--db {temporal_db} update-schema -d /schema/v12/temporal/versioned",
        f"--db {visibility_db} create",
        f"--db {visibility_db} setup-schema -v 0.0",
        f"--db {visibility_db} update-schema -d /schema/v12/visibility/versioned",
    ]
    again = run(tmp_path, temporal_db, visibility_db)  # a restart: the databases exist, nothing is created
    assert not [call for call in again if call.endswith(" create")]
    assert len(again) == 4


def test_missing_connection_settings_fail() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SQL_")}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "SQL_HOST" in result.stderr
