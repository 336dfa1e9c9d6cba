"""The agent directory on SQLite and PostgreSQL (archive/directory.py): idempotent assign per (request, attempt),
release once, the reasons, the round-robin cursor, and capacity under threads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from archive.directory import ASSIGNMENTS, TEAMS, Directory
from archive.store import Archive
from models.assignment import Agent, AssignRequest, Release, Shift

pytestmark = pytest.mark.integration
WED_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "agents.sample.yaml"


@pytest.fixture(params=["sqlite", "postgresql"])
def directory(request: pytest.FixtureRequest) -> Iterator[Directory]:
    store = Archive(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    store.create_schema()
    yield Directory(store.engine)
    store.close()


def agent(id: str, capacity: int = 5, **kw: Any) -> Agent:
    return Agent(id=id, name=id.upper(), team=kw.pop("team", "t1"), capacity=capacity, **kw)


def request(request_id: str, attempt: int = 1, **kw: Any) -> AssignRequest:
    fields: dict[str, Any] = {"strategy": "balanced", "team": "t1", "department": "customer_service",
                              "request_type": "complaint", "language": "zh-CN", "channel": "phone", "at": WED_10}
    return AssignRequest(request_id=request_id, attempt=attempt, **(fields | kw))


def loads(d: Directory) -> dict[str, int]:
    return {row["id"]: row["open_cases"] for row in d.list_agents()}


def consistent(d: Directory) -> None:
    """open_cases equals each agent's held rows and never exceeds capacity."""
    held = Counter(row["agent_id"] for row in d.held())
    for row in d.list_agents():
        assert row["open_cases"] == held[row["id"]] <= row["capacity"], row


def test_empty_directory_means_no_agents(directory: Directory) -> None:
    result = directory.assign(request("r-1"))
    assert (result.agent_id, result.reason, result.candidates) == (None, "no_agents", 0)
    directory.upsert_agents([agent("a", team="t2"), agent("b", skills={"request_types": ["repair"]})])
    assert directory.assign(request("r-1")).reason == "no_agents"
    assert directory.held() == []


def test_assign_is_idempotent_per_request_and_attempt(directory: Directory) -> None:
    directory.upsert_agents([agent("a"), agent("b")])
    first = directory.assign(request("r-1"))
    again = directory.assign(request("r-1"))
    assert first.reason == again.reason == "assigned"
    assert (again.agent_id, again.team, again.load) == (first.agent_id, "t1", 1)
    assert loads(directory) == {first.agent_id: 1, ({"a", "b"} - {first.agent_id}).pop(): 0}
    second = directory.assign(request("r-1", attempt=2, exclude=[first.agent_id]))  # the case was returned
    assert second.agent_id not in (None, first.agent_id)
    assert len(directory.held()) == 2
    consistent(directory)


def test_concurrent_retries_of_one_key_hold_one_agent(directory: Directory) -> None:
    directory.upsert_agents([agent("a"), agent("b"), agent("c")])
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: directory.assign(request("r-race")), range(12)))
    assert len({r.agent_id for r in results}) == 1 and results[0].agent_id is not None
    assert sum(loads(directory).values()) == 1
    consistent(directory)


def test_reasons_none_on_duty_and_at_capacity(directory: Directory) -> None:
    weekend = Shift(weekdays=[6, 7], start=time(9), end=time(18))
    directory.upsert_agents([agent("a", shift=weekend)])
    assert directory.assign(request("r-1")).reason == "none_on_duty"
    saturday = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert directory.assign(request("r-1", attempt=2, at=saturday)).agent_id == "a"
    directory.upsert_agents([agent("b", capacity=1)])
    assert directory.assign(request("r-2", exclude=["b"])).reason == "none_on_duty"
    assert directory.assign(request("r-3")).agent_id == "b"
    full = directory.assign(request("r-4"))
    assert (full.agent_id, full.reason, full.candidates) == (None, "at_capacity", 1)
    consistent(directory)


def test_release_once_and_never_below_zero(directory: Directory) -> None:
    directory.upsert_agents([agent("a", capacity=1)])
    assert directory.assign(request("r-1")).agent_id == "a"
    assert directory.assign(request("r-2")).reason == "at_capacity"
    wrong = Release(request_id="r-1", attempt=1, agent_id="zz", reason="resolved")
    assert not directory.release(wrong)
    rel = Release(request_id="r-1", attempt=1, agent_id="a", reason="resolved")
    assert directory.release(rel)
    assert not directory.release(rel)  # a retry changes nothing
    assert not directory.release(Release(request_id="r-9", attempt=1, agent_id="a", reason="returned"))
    assert loads(directory) == {"a": 0}
    assert directory.assign(request("r-2", attempt=2)).agent_id == "a"  # the room is back
    with directory.engine.connect() as conn:
        row = conn.execute(select(ASSIGNMENTS).where(ASSIGNMENTS.c.request_id == "r-1")).mappings().one()
    assert (row["status"], row["reason"], row["released_at"] is not None) == ("released", "resolved", True)
    # Assign of a released key still answers the same (a replayed attempt never takes a second agent).
    assert directory.assign(request("r-1")).agent_id == "a"
    assert loads(directory) == {"a": 1}
    consistent(directory)


def test_round_robin_cursor_turns(directory: Directory) -> None:
    directory.upsert_agents([agent("c"), agent("a"), agent("b", capacity=1)])
    served = [directory.assign(request(f"r-{i}", strategy="round_robin")).agent_id for i in range(7)]
    assert served == ["a", "b", "c", "a", "c", "a", "c"]  # b is full after its first turn
    with directory.engine.connect() as conn:
        assert conn.execute(select(TEAMS.c.rr_cursor).where(TEAMS.c.team == "t1")).scalar() == "c"
    # Without a team the department's pool has its own cursor.
    by_department = request("r-d", strategy="round_robin", team=None)
    assert directory.assign(by_department).agent_id == "a"
    with directory.engine.connect() as conn:
        cursors = dict(conn.execute(select(TEAMS.c.team, TEAMS.c.rr_cursor)).all())
    assert cursors == {"t1": "c", "department:customer_service": "a"}


def test_prefer_and_strategies_against_live_load(directory: Directory) -> None:
    directory.upsert_agents([agent("a", region="bj", level=5), agent("b", region="sh", level=2),
                             agent("c", region="sh", level=4)])
    assert directory.assign(request("r-1", strategy="nearest", region="sh")).agent_id == "c"
    assert directory.assign(request("r-2")).agent_id == "a"  # balanced: a and b idle, by id
    assert directory.assign(request("r-3")).agent_id == "b"
    assert directory.assign(request("r-4", prefer="c")).agent_id == "c"  # reopen: the previous owner first
    consistent(directory)


def test_upsert_keeps_load_and_deactivate_keeps_history(directory: Directory) -> None:
    assert directory.upsert_agents([agent("a", capacity=2)]) == 1
    created = directory.get_agent("a")
    assert created is not None and created["open_cases"] == 0 and created["active"]
    directory.assign(request("r-1"))
    directory.upsert_agents([agent("a", capacity=3, region="sh"), agent("a", capacity=4, region="gz")])
    updated = directory.get_agent("a")
    assert updated is not None
    assert (updated["capacity"], updated["region"], updated["open_cases"]) == (4, "gz", 1)
    assert updated["created_at"] == created["created_at"]
    assert directory.deactivate("a") and not directory.deactivate("a") and not directory.deactivate("zz")
    assert directory.assign(request("r-2")).reason == "no_agents"
    assert [row["request_id"] for row in directory.held("a")] == ["r-1"]  # held cases stay until released
    assert directory.list_agents(team="t1")[0]["active"] is False
    assert directory.get_agent("zz") is None
    consistent(directory)


def test_capacity_under_threads(directory: Directory) -> None:
    """Many threads assigning distinct requests at once: exactly the total capacity is assigned."""
    directory.upsert_agents([agent("a", capacity=3), agent("b", capacity=2), agent("c", capacity=4)])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: directory.assign(request(f"r-{i}", strategy=("balanced", "round_robin",
                                                                                         "nearest")[i % 3])),
                                range(30)))
    assigned = [r for r in results if r.agent_id]
    assert len(assigned) == 9
    assert {r.reason for r in results if not r.agent_id} == {"at_capacity"}
    assert loads(directory) == {"a": 3, "b": 2, "c": 4}
    consistent(directory)


def test_kefu_agent_cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    """`kefu agent import | add | list | remove`: an import with one bad entry writes nothing."""
    import argparse
    import json

    from cli import agents as agents_cli
    from cli.common import CliError

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    Archive(sqlite_url).create_schema()
    root = argparse.ArgumentParser(prog="kefu")
    sub = root.add_subparsers(dest="command", required=True)

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_text)
        c.add_argument("--json", action="store_true")
        return c

    agents_cli.add_parser(cmd)

    def kefu(*argv: str) -> Any:
        agents_cli.run(root.parse_args(["agent", *argv]))
        return json.loads(capsys.readouterr().out)

    bad = tmp_path / "bad.yaml"
    bad.write_text("- {id: a, name: A, team: t1, capacity: 2}\n- {id: b, name: B, team: t1, capacity: 0}\n")
    with pytest.raises(CliError, match=r"agents\.1\.capacity: Input should be greater than or equal to 1"):
        kefu("import", str(bad), "--json")
    assert kefu("list", "--json") == []
    assert kefu("--json", "import", str(SAMPLE)) == {"imported": 6}
    added = kefu("add", "--id", "x1", "--name", "X", "--team", "t1", "--capacity", "2", "--types",
                 "complaint,repair", "--json")
    assert added["skills"]["request_types"] == ["complaint", "repair"] and added["on_shift"] is True
    with pytest.raises(CliError, match=r"^skills\.request_types\.0: "):
        kefu("add", "--id", "x2", "--name", "X", "--team", "t1", "--capacity", "2", "--types", "bogus")
    assert [row["id"] for row in kefu("list", "--team", "t1", "--json")] == ["x1"]
    assert kefu("remove", "x1", "--json") == {"id": "x1", "active": False, "changed": True}
    with pytest.raises(CliError, match="no agent nope"):
        kefu("remove", "nope")
    agents_cli.run(root.parse_args(["agent", "list"]))
    assert "0/10" in capsys.readouterr().out  # night.1's load/capacity in the table
