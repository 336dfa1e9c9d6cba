"""`kefu doctor` (issue 9): healthy against the dev server with a migrated archive; one line naming the problem for
each thing that is wrong; exit 0 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from archive import migrate
from cli import doctor
from cli import main as starter
from infra.codec import new_key_entry
from tests.integration.conftest import dev_address

pytestmark = pytest.mark.integration


@pytest.fixture
def healthy_env(dev_env: WorkflowEnvironment, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_address(dev_env))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    monkeypatch.delenv("KEFU_CODEC_KEY_FILE", raising=False)
    monkeypatch.setenv("KEFU_CODEC_KEYS", new_key_entry("kdoc"))
    migrate.upgrade(sqlite_url)
    return sqlite_url


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


async def test_healthy(healthy_env: str) -> None:
    checks = await doctor.run_checks(require_encryption=True)
    assert [c.name for c in checks] == ["temporal", "namespace", "search-attributes", "database", "codec",
                                        "calendars"]
    assert all(c.ok for c in checks), doctor.render(checks)  # a calendar running out is a WARN, still healthy
    assert by_name(checks)["codec"].message.startswith("encrypting with kdoc")
    assert len(doctor.render(checks).splitlines()) == 6


def test_cli_exit_codes(healthy_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert starter.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 6 and "FAIL" not in out
    migrate.downgrade("base", healthy_env)
    assert starter.main(["doctor", "--json"]) == 2
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows if not r["ok"]] == ["database"]
    assert "kefu db upgrade" in next(r["message"] for r in rows if r["name"] == "database")


async def test_each_problem_is_one_line(healthy_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "no-such-namespace")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.delenv("KEFU_CODEC_KEYS")
    checks = by_name(await doctor.run_checks(require_encryption=True))
    assert checks["temporal"].ok
    assert not checks["namespace"].ok and "not found" in checks["namespace"].message
    assert not checks["search-attributes"].ok
    assert not checks["database"].ok and "no schema version" in checks["database"].message
    assert not checks["codec"].ok and "encryption off" in checks["codec"].message
    assert all("\n" not in c.message for c in checks.values())

    monkeypatch.setenv("KEFU_CODEC_KEYS", "k1:bm90LWEta2V5")
    assert not doctor.check_codec().ok
    assert "k1" in doctor.check_codec().message
    monkeypatch.setenv("KEFU_CODEC_KEYS", "")
    monkeypatch.setenv("KEFU_CODEC_KEY_FILE", str(tmp_path / "missing.keys"))
    assert not doctor.check_codec().ok


async def test_unreachable_server(healthy_env: str) -> None:
    temporal, client = await doctor.check_temporal("127.0.0.1:1")
    assert not temporal.ok and client is None
    assert temporal.message.startswith("cannot connect to 127.0.0.1:1") or "no answer" in temporal.message
    namespace = await doctor.check_namespace(None)
    assert not namespace.ok and "no Temporal connection" in namespace.message


def test_database_behind_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate.upgrade(url)
    assert doctor.check_database(url).ok
    bad = doctor.check_database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert not bad.ok and "\n" not in bad.message


def test_tls_from_environment(tmp_path: Path) -> None:
    from infra import temporal_env

    assert temporal_env.tls_config({}) is False
    assert temporal_env.tls_config({"TEMPORAL_TLS": "true"}) is True
    for name in ("cert", "key", "ca"):
        (tmp_path / f"{name}.pem").write_bytes(f"-----{name}-----".encode())
    tls = temporal_env.tls_config({"TEMPORAL_TLS_CERT": str(tmp_path / "cert.pem"),
                                   "TEMPORAL_TLS_KEY": str(tmp_path / "key.pem"),
                                   "TEMPORAL_TLS_CA": str(tmp_path / "ca.pem"), "TEMPORAL_TLS_SERVER_NAME": "t.local"})
    assert not isinstance(tls, bool)
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert, tls.domain) == (
        b"-----cert-----", b"-----key-----", b"-----ca-----", "t.local")
    with pytest.raises(RuntimeError, match="go together"):
        temporal_env.tls_config({"TEMPORAL_TLS_CERT": str(tmp_path / "cert.pem")})
    with pytest.raises(RuntimeError, match=r"TEMPORAL_TLS_CA=.*cannot read"):
        temporal_env.tls_config({"TEMPORAL_TLS_CA": str(tmp_path / "missing.pem")})
