"""The audit trail's hash chain as pure functions (archive/audit_chain.py, 002 §2.4.3): the hash definition is
frozen, a sealed chain verifies, and every kind of tampering is named by its request (or incident) and seq."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from archive import audit_chain
from archive.audit_chain import EMPTY, GENESIS, INCIDENT_LOG, REQUEST_LOG, Head, Problem, verify_chain

T0 = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)


def line(seq: int, action: str = "note", revision: int = 0, **fields: Any) -> dict[str, Any]:
    return {"request_id": "R-1", "seq": seq, "revision": revision, "at": T0 + timedelta(seconds=seq),
            "actor_id": "agent-7", "actor_role": "agent", "action": action, "stage": "handling",
            "detail": {"after": "handling", "n": seq}, "rejected": False} | fields


def chain(count: int = 5) -> tuple[list[dict[str, Any]], Head]:
    rows, head = audit_chain.seal(REQUEST_LOG, EMPTY, [line(seq) for seq in range(count)])
    return [row | {"id": i + 1} for i, row in enumerate(rows)], head


def problems(rows: list[dict[str, Any]], head: Head | None) -> list[tuple[int, int, str]]:
    return [(p.seq, p.revision, p.kind) for p in verify_chain(REQUEST_LOG, "R-1", rows, head).problems]


def test_the_hash_definition_is_frozen() -> None:
    """Every stored chain depends on it: SHA-256 over the previous hash, a newline and the canonical JSON."""
    row = line(0)
    assert audit_chain.canonical(REQUEST_LOG, row) == (
        '{"action":"note","actor_id":"agent-7","actor_role":"agent","at":"2026-11-21T17:30:00+00:00",'
        '"detail":{"after":"handling","n":0},"rejected":false,"request_id":"R-1","revision":0,"seq":0,'
        '"stage":"handling"}')
    assert audit_chain.link(GENESIS, REQUEST_LOG, row) == (
        "154fcbb3de6bce72b653defdfd969a58683fae70cf67bb9f68555ba9a12098a8")


def test_canonical_content_is_the_value_not_its_storage() -> None:
    """The same line read back from SQLite (naive UTC, JSON text) or PostgreSQL (timestamptz in another zone,
    jsonb numbers) hashes the same; chain columns, ids and task_at are not content."""
    row = line(3, detail={"b": 1e20, "a": [1.0, 0.5], "t": "张三"})
    beijing = timezone(timedelta(hours=8))
    stored = row | {"at": row["at"].astimezone(beijing), "detail": {"a": [1, 0.5], "t": "张三", "b": 10**20},
                    "id": 9, "prev_hash": "x", "hash": "y", "task_at": T0}
    naive = row | {"at": row["at"].replace(tzinfo=None)}
    assert audit_chain.canonical(REQUEST_LOG, stored) == audit_chain.canonical(REQUEST_LOG, row)
    assert audit_chain.canonical(REQUEST_LOG, naive) == audit_chain.canonical(REQUEST_LOG, row)
    assert audit_chain.canonical(REQUEST_LOG, row | {"rejected": True}) != audit_chain.canonical(REQUEST_LOG, row)
    assert audit_chain.same_line(REQUEST_LOG, row, row | {"revision": 2})  # a revision repeats a line or not
    incident = {"incident_id": "INC-1", **{k: v for k, v in row.items() if k not in ("request_id", "stage")}}
    assert '"incident_id":"INC-1"' in audit_chain.canonical(INCIDENT_LOG, incident)


def test_a_sealed_chain_holds_and_its_head_is_the_last_hash() -> None:
    rows, head = chain()
    assert head == Head(5, rows[-1]["hash"]) and rows[0]["prev_hash"] == GENESIS
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, 5))
    result = verify_chain(REQUEST_LOG, "R-1", rows, head)
    assert result.problems == [] and (result.lines, result.head, result.superseded) == (5, head.hash, 0)
    more, longer = audit_chain.seal(REQUEST_LOG, head, [line(5), line(2, "retried", revision=1)])
    assert more[0]["prev_hash"] == head.hash and longer.lines == 7
    assert verify_chain(REQUEST_LOG, "R-1", rows + more, longer).superseded == 1
    assert problems(rows + more, longer) == []


def test_a_changed_line_is_named() -> None:
    rows, head = chain()
    rows[2] = rows[2] | {"detail": {"after": "closed"}}
    found = verify_chain(REQUEST_LOG, "R-1", rows, head).problems
    assert [str(p) for p in found] == [
        "request R-1 seq 2: changed: its content does not match its hash (edited, or written with a forged hash)"]


def test_a_changed_and_rehashed_line_breaks_the_next_link() -> None:
    rows, head = chain()
    edited = rows[2] | {"action": "erased"}
    rows[2] = edited | {"hash": audit_chain.link(edited["prev_hash"], REQUEST_LOG, edited)}
    assert problems(rows, head) == [(3, 0, "removed")]


def test_a_removed_line_is_named_by_its_seq() -> None:
    rows, head = chain()
    del rows[2]
    assert problems(rows, head) == [(2, 0, "removed")]
    rows, head = chain()
    del rows[0]
    assert problems(rows, head) == [(0, 0, "removed")]


def test_lines_removed_from_the_end_are_found_through_the_head() -> None:
    rows, head = chain()
    assert problems(rows[:3], head) == [(3, 0, "removed")]
    assert problems([], head) == [(0, 0, "removed")]
    assert problems(rows, None) == [(4, 0, "removed")]  # the head record itself is gone


def test_an_appended_line_is_found_even_with_a_valid_hash() -> None:
    """Whoever knows the algorithm can chain a line on; the recorded head shows it came from outside kefu."""
    rows, head = chain()
    forged, _ = audit_chain.seal(REQUEST_LOG, head, [line(5, "forged")])
    assert problems([*rows, forged[0] | {"id": 6}], head) == [(5, 0, "inserted")]
    wrong = line(5, "forged") | {"prev_hash": "a" * 64, "hash": "b" * 64}
    assert problems([*rows, wrong], head) == [(5, 0, "inserted")]
    assert problems([*rows, line(5)], head) == [(5, 0, "inserted")]  # no hash at all


def test_a_line_inserted_out_of_order_is_named() -> None:
    rows, head = chain()
    forged = line(2, "forged", revision=1) | {"prev_hash": rows[1]["hash"]}
    forged["hash"] = audit_chain.link(forged["prev_hash"], REQUEST_LOG, forged)
    assert problems([*rows[:2], forged, *rows[2:]], head) == [(2, 1, "inserted")]  # nothing is chained after it
    assert problems([*rows[:2], rows[3], rows[2], rows[4]], head) == [(2, 0, "inserted"), (3, 0, "inserted")]


def test_missing_revisions_are_removed_lines() -> None:
    rows, head = audit_chain.seal(REQUEST_LOG, EMPTY, [line(0), line(0, "b", revision=1), line(0, "c", revision=2)])
    assert problems([rows[0], rows[2]], head) == [(0, 1, "removed")]


def test_problems_print_one_line_naming_log_id_and_seq() -> None:
    problem = Problem("incident", "INC-1", 4, 1, "changed", "why")
    assert str(problem) == "incident INC-1 seq 4 revision 1: changed: why"
    assert problem.as_json() == {"log": "incident", "id": "INC-1", "seq": 4, "revision": 1, "kind": "changed",
                                 "reason": "why"}


@pytest.mark.parametrize(("rows", "shown"), [
    ([line(0, "a")], "a"),
    ([line(0, "a", task_at=T0), line(0, "b", revision=1, task_at=T0 + timedelta(seconds=1))], "b"),
    ([line(0, "a", task_at=T0 + timedelta(seconds=1)), line(0, "b", revision=1, task_at=T0)], "a"),  # older task
    ([line(0, "a"), line(0, "b", revision=1, task_at=T0)], "b"),  # lines from before the chain have no task_at
    ([line(0, "a", task_at=T0), line(0, "b", revision=1, task_at=T0)], "b"),
])
def test_the_trail_shows_the_newest_tasks_line(rows: list[dict[str, Any]], shown: str) -> None:
    assert audit_chain.effective(rows)["action"] == shown  # type: ignore[index]
