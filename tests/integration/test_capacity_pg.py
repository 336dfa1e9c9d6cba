"""Capacity is never exceeded under real concurrency on PostgreSQL: several OS processes (spawned), each with many
threads and its own connection pool, assign distinct requests to a few small-capacity agents at the same moment;
then half the holds are released concurrently (each release sent twice, from two processes) and new requests are
assigned again. After every phase: no agent holds more than its capacity, open_cases equals its held rows, and
exactly the free capacity was handed out."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from archive.directory import Directory
from archive.store import Archive
from models.assignment import Agent, AssignRequest, Release

pytestmark = pytest.mark.integration

PROCESSES = 3
THREADS = 8
CAPACITY = {"a1": 2, "a2": 3, "a3": 3, "a4": 4}  # 12 in all
STRATEGIES = ("balanced", "round_robin", "nearest")
AT = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def _request(request_id: str, index: int) -> AssignRequest:
    return AssignRequest(request_id=request_id, attempt=1, strategy=STRATEGIES[index % 3], team="desk",
                         department="customer_service", request_type="inquiry", language="zh-CN", channel="phone",
                         region="sh", at=AT)


def _serve(url: str, tasks: Any, results: Any, barrier: Any) -> None:
    """One process: its own engine and thread pool; every task starts on the shared barrier."""
    store = Archive(url)
    directory = Directory(store.engine)
    with ThreadPoolExecutor(THREADS) as pool:
        while (task := tasks.get()) is not None:
            kind, items = task
            barrier.wait(timeout=60)
            if kind == "assign":
                out = list(pool.map(lambda item: directory.assign(_request(*item)).agent_id, items))
            else:
                out = list(pool.map(lambda item: directory.release(Release(**item)), items))
            results.put(out)
    store.close()


class Cluster:
    """PROCESSES worker processes; run() hands each its share of one phase and gathers the answers."""

    def __init__(self, url: str) -> None:
        ctx = mp.get_context("spawn")
        self.barrier = ctx.Barrier(PROCESSES)
        self.results = ctx.Queue()
        self.tasks = [ctx.Queue() for _ in range(PROCESSES)]
        self.procs = [ctx.Process(target=_serve, args=(url, q, self.results, self.barrier), daemon=True)
                      for q in self.tasks]
        for proc in self.procs:
            proc.start()

    def run(self, kind: str, shares: list[list[Any]]) -> list[Any]:
        for queue, share in zip(self.tasks, shares, strict=True):
            queue.put((kind, share))
        return [item for _ in shares for item in self.results.get(timeout=120)]

    def close(self) -> None:
        for queue in self.tasks:
            queue.put(None)
        for proc in self.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


@pytest.fixture
def setup(pg_url: str) -> Iterator[tuple[Directory, Cluster]]:
    store = Archive(pg_url)
    store.create_schema()
    directory = Directory(store.engine)
    directory.upsert_agents([Agent(id=id, name=id, team="desk", region="sh" if id in ("a2", "a4") else None,
                                   capacity=cap) for id, cap in CAPACITY.items()])
    cluster = Cluster(pg_url)
    try:
        yield directory, cluster
    finally:
        cluster.close()
        store.close()


def _check(directory: Directory) -> dict[str, int]:
    held = Counter(row["agent_id"] for row in directory.held())
    agents = {row["id"]: row for row in directory.list_agents()}
    for id, row in agents.items():
        assert held[id] <= row["capacity"], f"{id} holds {held[id]} > capacity {row['capacity']}"
        assert row["open_cases"] == held[id], f"{id}: open_cases {row['open_cases']} != held rows {held[id]}"
    return dict(held)


def _shares(prefix: str, per_thread: int) -> list[list[tuple[str, int]]]:
    count = THREADS * per_thread
    return [[(f"{prefix}-{p}-{i}", i) for i in range(count)] for p in range(PROCESSES)]


def test_capacity_holds_across_processes(setup: tuple[Directory, Cluster]) -> None:
    directory, cluster = setup
    total = sum(CAPACITY.values())

    # Phase 1: 96 distinct requests from 3 × 8 threads at once, for 12 places.
    served = cluster.run("assign", _shares("first", 4))
    assert len(served) == PROCESSES * THREADS * 4
    assert sum(agent is not None for agent in served) == total
    assert _check(directory) == CAPACITY

    # Phase 2: release half of the holds concurrently; every release is sent by two processes, one wins.
    held = directory.held()
    half = [{"request_id": row["request_id"], "attempt": 1, "agent_id": row["agent_id"], "reason": "resolved"}
            for row in held[: total // 2]]
    shares: list[list[Any]] = [[] for _ in range(PROCESSES)]
    for i, rel in enumerate(half):
        shares[i % PROCESSES].append(rel)
        shares[(i + 1) % PROCESSES].append(rel)
    released = cluster.run("release", shares)
    assert sum(released) == len(half) and len(released) == 2 * len(half)
    assert sum(_check(directory).values()) == total - len(half)

    # Phase 3: 48 new requests at once refill exactly the freed places.
    served = cluster.run("assign", _shares("second", 2))
    assert sum(agent is not None for agent in served) == len(half)
    assert _check(directory) == CAPACITY
