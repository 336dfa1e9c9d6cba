"""Ranking of candidate agents (domain/assignment.py): filters, the three strategies, prefer and exclude."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.assignment import Candidate, on_shift, rank, skill_score
from models.assignment import AssignRequest, Shift, Skills

# Wednesday 2026-11-25 10:00 in Shanghai.
WED_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def agent(id: str, **kw: Any) -> Candidate:
    fields: dict[str, Any] = {"team": "t1", "department": "customer_service", "region": None, "level": 1, "load": 0,
                              "capacity": 5, "skills": Skills(), "shift": Shift()}
    fields.update(kw)
    return Candidate(id=id, **fields)


def request(**kw: Any) -> AssignRequest:
    fields: dict[str, Any] = {"request_id": "r-1", "attempt": 1, "strategy": "balanced", "team": "t1",
                              "department": "customer_service", "request_type": "complaint", "language": "zh-CN",
                              "channel": "phone", "at": WED_10}
    fields.update(kw)
    return AssignRequest(**fields)


def ids(cs: list[Candidate]) -> list[str]:
    return [c.id for c in cs]


# --- filters ------------------------------------------------------------------------------------------------------

def test_shift_day_interval_in_its_time_zone() -> None:
    office = Shift(weekdays=[1, 2, 3, 4, 5], start=time(9), end=time(18))
    assert on_shift(office, WED_10)
    assert not on_shift(office, datetime(2026, 11, 25, 11, 0, tzinfo=UTC))  # 19:00 in Shanghai
    assert not on_shift(office, datetime(2026, 11, 28, 2, 0, tzinfo=UTC))  # Saturday
    assert on_shift(office, datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 09:00 sharp
    assert on_shift(office.model_copy(update={"timezone": "UTC"}), datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
    assert on_shift(Shift(), datetime(2026, 11, 29, 15, 59, 59, 900000, tzinfo=UTC))  # 23:59:59.9: default all day


def test_overnight_shift_belongs_to_the_day_it_starts() -> None:
    fri_night = Shift(weekdays=[5], start=time(22), end=time(6))
    assert on_shift(fri_night, datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # Fri 23:00
    assert on_shift(fri_night, datetime(2026, 11, 27, 21, 0, tzinfo=UTC))  # Sat 05:00, Friday's shift
    assert not on_shift(fri_night, datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Sat 23:00
    assert not on_shift(fri_night, datetime(2026, 11, 27, 2, 0, tzinfo=UTC))  # Fri 10:00


def test_skills_empty_means_any_and_specific_counts() -> None:
    req = request(category="billing")
    assert skill_score(Skills(), req) == 0
    assert skill_score(Skills(request_types=["complaint"], languages=["zh-CN"]), req) == 2
    assert skill_score(Skills(request_types=["repair"]), req) is None
    assert skill_score(Skills(channels=["email"]), req) is None
    assert skill_score(Skills(categories=["network"]), req) is None
    assert skill_score(Skills(categories=["network"]), request(category=None)) == 0  # no category: fits any


def test_filters_and_reasons() -> None:
    req = request()
    off = Shift(weekdays=[6, 7])
    assert rank([], req).reason == "no_agents"
    assert rank([agent("a", team="t2"), agent("b", skills=Skills(request_types=["repair"])),
                 agent("c", active=False)], req).reason == "no_agents"
    assert rank([agent("a", shift=off)], req).reason == "none_on_duty"
    assert rank([agent("a")], request(exclude=["a"])).reason == "none_on_duty"
    full = rank([agent("a", load=5), agent("b", load=2, capacity=2)], req)
    assert (full.reason, full.matching, ids(full.on_duty), full.free) == ("at_capacity", 2, ["a", "b"], [])
    ok = rank([agent("a", load=5), agent("b", shift=off), agent("c")], req)
    assert (ok.reason, ok.matching, ids(ok.free)) == ("assigned", 3, ["c"])


def test_department_pool_when_no_team() -> None:
    req = request(team=None, department="technical")
    cs = [agent("a", department="technical", team="x"), agent("b"), agent("c", department="technical", team="y")]
    assert ids(rank(cs, req).free) == ["a", "c"]


# --- strategies ---------------------------------------------------------------------------------------------------

def test_balanced_skill_then_load_ratio_then_id() -> None:
    cs = [agent("wild-idle"), agent("spec-busy", skills=Skills(request_types=["complaint"]), load=3),
          agent("spec-idle", skills=Skills(request_types=["complaint"]), load=1, capacity=10),
          agent("spec-idle2", skills=Skills(request_types=["complaint"]), load=1, capacity=10),
          agent("wild-half", load=1, capacity=2)]
    assert ids(rank(cs, request()).on_duty) == ["spec-idle", "spec-idle2", "spec-busy", "wild-idle", "wild-half"]


def test_round_robin_turns_after_the_cursor_and_wraps() -> None:
    cs = [agent("c"), agent("a"), agent("b"), agent("d", load=5)]
    req = request(strategy="round_robin")
    assert ids(rank(cs, req).free) == ["a", "b", "c"]
    assert ids(rank(cs, req, cursor="a").free) == ["b", "c", "a"]
    assert ids(rank(cs, req, cursor="c").free) == ["a", "b", "c"]  # d is full: skipped
    assert ids(rank(cs, req, cursor="gone").free) == ["a", "b", "c"]  # a removed agent's id still orders
    assert ids(rank(cs, req, cursor="bb").free) == ["c", "a", "b"]


def test_nearest_region_then_level_then_load() -> None:
    cs = [agent("far-expert", region="bj", level=5), agent("near-junior", region="sh", level=1),
          agent("near-senior-busy", region="sh", level=3, load=4), agent("near-senior", region="sh", level=3, load=1),
          agent("nowhere", level=4)]
    req = request(strategy="nearest", region="sh")
    assert ids(rank(cs, req).on_duty) == ["near-senior", "near-senior-busy", "near-junior", "far-expert", "nowhere"]
    # No customer region: the most capable first.
    assert ids(rank(cs, request(strategy="nearest")).on_duty)[:2] == ["far-expert", "nowhere"]


def test_prefer_first_only_with_room() -> None:
    cs = [agent("a"), agent("b", load=4), agent("c", load=5)]
    assert ids(rank(cs, request(prefer="b")).free) == ["b", "a"]
    assert ids(rank(cs, request(prefer="c")).free) == ["a", "b"]
    assert ids(rank(cs, request(prefer="c")).on_duty) == ["a", "b", "c"]  # full prefer keeps its place
    assert ids(rank(cs, request(prefer="b", exclude=["b"])).free) == ["a"]  # exclude wins over prefer
    assert ids(rank(cs, request(prefer="zz")).free) == ["a", "b"]


# --- properties ---------------------------------------------------------------------------------------------------

candidates = st.lists(
    st.builds(
        agent,
        st.sampled_from([f"ag{i}" for i in range(8)]),
        team=st.sampled_from(["t1", "t2"]),
        region=st.sampled_from([None, "sh", "bj"]),
        level=st.integers(1, 5),
        load=st.integers(0, 4),
        capacity=st.integers(1, 4),
        skills=st.builds(Skills, request_types=st.sampled_from([[], ["complaint"], ["repair"]]),
                         languages=st.sampled_from([[], ["zh-CN"], ["en"]])),
        shift=st.sampled_from([Shift(), Shift(weekdays=[6, 7])]),
        active=st.booleans(),
    ),
    max_size=10,
    unique_by=lambda c: c.id,
)


@settings(max_examples=300, deadline=None)
@given(cs=candidates, strategy=st.sampled_from(["balanced", "round_robin", "nearest"]),
       exclude=st.lists(st.sampled_from([f"ag{i}" for i in range(8)]), max_size=3),
       prefer=st.none() | st.sampled_from([f"ag{i}" for i in range(8)]),
       cursor=st.none() | st.sampled_from([f"ag{i}" for i in range(8)]), region=st.none() | st.just("sh"))
def test_ranking_properties(cs: list[Candidate], strategy: str, exclude: list[str], prefer: str | None,
                            cursor: str | None, region: str | None) -> None:
    req = request(strategy=strategy, exclude=exclude, prefer=prefer, region=region)
    ranking = rank(cs, req, cursor)
    eligible = {c.id for c in cs if c.active and c.team == "t1" and skill_score(c.skills, req) is not None
                and c.id not in exclude and on_shift(c.shift, WED_10)}
    assert sorted(ids(ranking.on_duty)) == sorted(eligible)  # a permutation of exactly the eligible agents
    assert all(c.has_room for c in ranking.free)
    assert {c.id for c in ranking.free} == {c.id for c in ranking.on_duty if c.has_room}
    if ranking.free:
        assert ranking.reason == "assigned"
        first = ranking.free[0]
        if prefer in {c.id for c in ranking.free}:
            assert first.id == prefer
        elif strategy == "round_robin" and cursor is not None:
            after = sorted(c.id for c in ranking.free if c.id > cursor)
            assert first.id == (after[0] if after else min(c.id for c in ranking.free))
        elif strategy == "nearest" and region:
            assert (first.region == region) or not any(c.region == region for c in ranking.free)
    assert rank(cs, req, cursor) == ranking  # pure: same input, same answer
