"""`kefu token issue`, `kefu login` and KEFU_TOKEN (issue 14): with a token the CLI acts as the token's principal and
--actor/--role default to it and may not contradict it; without one it stays the trusted local tool (development
mode). The console script as a subprocess against the session's dev server, a worker in this process."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.issuer import issuer_from_env
from infra.principal import key_file
from tests.integration import test_cli as cli_tests
from tests.integration.test_cli import CUSTOMER, Cli, archived, new_id

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
cli_env, cli = cli_tests.cli_env, cli_tests.cli  # the CLI's fixtures: dev server, worker, SQLite archive


@pytest.fixture
def issuer_file(tmp_path: Path) -> Path:
    issuer_from_env({"KEFU_DATA_DIR": str(tmp_path / "issuer")})
    return tmp_path / "issuer" / "issuer.key"


async def test_token_issue_and_the_cli_acting_as_the_token(cli: Cli, issuer_file: Path, tmp_path: Path) -> None:
    env = {"KEFU_ISSUER_KEY_FILE": str(issuer_file)}
    issued = (await cli("token", "issue", "--sub", "sup-1", "--role", "supervisor", "--ttl", "1h", "--json",
                        **env)).json()
    assert (issued["sub"], issued["role"]) == ("sup-1", "supervisor")
    (await cli("token", "issue", "--sub", "kefu", "--role", "system", **env)).one_line_error(
        "role: system can never be issued")
    agent = (await cli("token", "issue", "--sub", "a1", "--role", "agent", **env)).out.strip()
    supervisor = issued["token"]

    rid = new_id()
    (await cli.submit(rid, "--channel", "phone", *CUSTOMER, "--description", "我想查询一下上个月的账单明细")).json()
    responded = (await cli("act", rid, "respond", "--message", "您好", "--json", KEFU_TOKEN=agent, **env)).json()
    assert responded["owner"] == "a1"  # --actor and --role came from the token
    escalated = (await cli("escalate", rid, "--reason", "客户着急", "--json", KEFU_TOKEN=supervisor, **env)).json()
    assert escalated["escalation_level"] == 1
    (await cli("escalate", rid, "--actor", "sup-2", "--reason", "x", KEFU_TOKEN=supervisor, **env)).one_line_error(
        "--actor: the token acts as supervisor sup-1; it may not act as sup-2")
    expired = issuer_from_env({"KEFU_ISSUER_KEY_FILE": str(issuer_file)}).issue(
        "sup-1", "supervisor", timedelta(hours=1), now=datetime.now(UTC) - timedelta(hours=2))
    (await cli("escalate", rid, "--reason", "x", KEFU_TOKEN=expired, **env)).one_line_error("KEFU_TOKEN: expired")
    (await cli("act", rid, "note", "--text", "x")).one_line_error("--actor: required")  # no token, no actor
    row = await archived(cli.database_url, rid, lambda r: r["escalation_level"] == 1)
    assert row["owner"] == "a1"

    # kefu login keeps the token owner-only; the next command acts as it
    data = tmp_path / "data"
    login_env = {**env, "KEFU_DATA_DIR": str(data), "KEFU_PRINCIPAL_KEY_FILE": str(ROOT / key_file())}
    if (ROOT / ".data" / "codec.key").exists():  # the session's client encrypts with it
        login_env["KEFU_CODEC_KEY_FILE"] = str(ROOT / ".data" / "codec.key")
    logged_in = await cli("login", "--token", agent, **login_env)
    assert logged_in.rc == 0 and "logged in as agent a1" in logged_in.out, logged_in.err
    assert stat.S_IMODE((data / "cli.token").stat().st_mode) == 0o600
    noted = (await cli("act", rid, "note", "--text", "随访", "--json", **login_env)).json()
    assert noted["last_action"] == "note"
    trail = (await cli("show", rid, "--json")).json()["audit"]
    assert [(e["actor_role"], e["actor_id"]) for e in trail if e["action"] in ("respond", "escalate", "note")] == [
        ("agent", "a1"), ("supervisor", "sup-1"), ("agent", "a1")]
    (await cli("login", "--token", "garbage", **login_env)).one_line_error("--token: malformed")
