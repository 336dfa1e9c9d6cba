"""Throughput: full-lifecycle requests completed per second over the bare baseline, and history events per request.

A happy path driven at once: start, respond, resolve, confirm, (revisit delay) survey — under a fast copy of
service_center (bench.breach_bench.write_fast_pack) whose confirmation/survey windows and revisit delay are
seconds. The bare baseline (bench.bare) runs as many no-op activities as a happy path runs local activities.
Both are driven with the same concurrency on the same dev server, alternating, in one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from bench.bare import BARE_TASK_QUEUE, BareInput, BareWorkflow
from bench.breach_bench import bench_intake
from cli.main import submit
from models.actions import Act, Confirm, SurveyAnswer
from workflows.service_request import ServiceRequestWorkflow

REQUEST_TYPES = ("inquiry", "complaint", "suggestion", "repair", "transaction")
UPDATE_RETRIES = {"count": 0}  # updates refused by a validator because the workflow was not at that stage yet


class Progress:
    """One line on stderr: `label [#####.....] done/total note`."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.note = label, max(total, 1), 0, ""
        self.show()

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.done == self.total or self.done % max(1, self.total // 50) == 0:
            self.show()

    def update(self, done: int, note: str = "") -> None:
        """Set the count (and a note after it) and redraw."""
        self.done, self.note = done, note
        self.show()

    def show(self) -> None:
        filled = min(30, 30 * self.done // self.total)
        end = "\n" if self.done >= self.total else ""
        note = f" {self.note}" if self.note else ""
        clear = "\033[K" if sys.stderr.isatty() else ""
        sys.stderr.write(f"\r{self.label:<28} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}{note}"
                         f"{clear}{end}")
        sys.stderr.flush()


async def _update(handle: WorkflowHandle, update: Any, arg: Any, retry_every: float = 0.05,
                  timeout: float = 60.0) -> float:
    """Execute an update, retrying while its validator refuses it (the workflow has not reached that stage yet).
    Returns the round trip of the accepted call in seconds."""
    deadline = time.monotonic() + timeout
    while True:
        began = time.perf_counter()
        try:
            await handle.execute_update(update, arg)
            return time.perf_counter() - began
        except WorkflowUpdateFailedError:
            if time.monotonic() > deadline:
                raise
            UPDATE_RETRIES["count"] += 1
            await asyncio.sleep(retry_every)


async def drive_lifecycle(client: Client, task_queue: str, policy: str, request_id: str,
                          type_hint: str = "inquiry", revisit_delay_s: float = 1.0,
                          latencies: list[float] | None = None) -> WorkflowHandle:
    """One request through every stage at once; the agent updates' round trips go to `latencies`."""
    n = int(request_id.rsplit("-", 1)[1])
    intake = bench_intake(n, policy, request_id.rsplit("-", 1)[0], type_hint)
    handle, _ = await submit(client, intake, wait_for_ticket=False, task_queue=task_queue)
    agent = {"id": "agent-bench", "role": "agent"}
    respond = Act.model_validate({"actor": agent, "action": {"kind": "respond", "message": "您好，已受理"}})
    # a suggestion's decision is management's (001 Ch8): a manager resolves it, an agent everything else
    manager = {"id": "mgr-bench", "role": "manager"}
    resolver, decision = (manager, "bench") if type_hint == "suggestion" else (agent, None)
    resolve = Act.model_validate({"actor": resolver, "action": {
        "kind": "resolve", "summary": "已处理", "root_cause": "bench", "decision": decision}})
    took = [await _update(handle, ServiceRequestWorkflow.act, respond),
            await _update(handle, ServiceRequestWorkflow.act, resolve)]
    if latencies is not None:
        latencies.extend(took)
    await _update(handle, ServiceRequestWorkflow.confirm, Confirm(accepted=True))
    await asyncio.sleep(revisit_delay_s)
    await _update(handle, ServiceRequestWorkflow.survey, SurveyAnswer(score=95, nps=9), retry_every=0.1)
    final = await handle.result()
    if final.outcome != "satisfied":
        raise RuntimeError(f"{request_id}: outcome {final.outcome}, expected satisfied")
    return handle


async def run_many(count: int, concurrency: int, job: Callable[[int], Awaitable[Any]],
                   progress: Progress | None = None) -> tuple[float, list[Any]]:
    """Run job(0..count-1) with at most `concurrency` in flight; returns (completions per second, results)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with gate:
            result = await job(i)
        if progress:
            progress.step()
        return result

    began = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - began), list(results)


async def history_counts(handle: WorkflowHandle) -> Counter[str]:
    """Events by type in one workflow's history, plus `total`; local-activity markers also by activity type
    (`MARKER_RECORDED:persist`) and timers started by their summary (`TIMER_STARTED:revisit delay`)."""
    counts: Counter[str] = Counter()
    async for event in handle.fetch_history_events():
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        counts[name] += 1
        counts["total"] += 1
        detail = _detail(event, name)
        if detail:
            counts[f"{name}:{detail}"] += 1
    return counts


def _detail(event: Any, name: str) -> str | None:
    """The local activity of a marker, or the summary of a timer (best effort: None when not decodable)."""
    try:
        if name == "MARKER_RECORDED":
            data = event.marker_recorded_event_attributes.details["data"].payloads[0].data
            return str(json.loads(data).get("activity_type") or "") or None
        if name == "TIMER_STARTED" and event.HasField("user_metadata"):
            return str(json.loads(event.user_metadata.summary.data)) or None
    except (KeyError, IndexError, ValueError, AttributeError):
        return None
    return None


async def per_type_events(client: Client, task_queue: str, policy: str, revisit_delay_s: float) -> dict[str, Any]:
    """One happy path per request type; history events each, and the local activities a happy path runs."""
    progress = Progress("history: one per type", len(REQUEST_TYPES))

    async def job(i: int) -> Counter[str]:
        handle = await drive_lifecycle(client, task_queue, policy, f"bench-type-{i:05d}", REQUEST_TYPES[i],
                                       revisit_delay_s)
        return await history_counts(handle)

    _, counts = await run_many(len(REQUEST_TYPES), len(REQUEST_TYPES), job, progress)
    return {"events_per_type": {t: c["total"] for t, c in zip(REQUEST_TYPES, counts, strict=True)},
            "markers_per_type": {t: c["MARKER_RECORDED"] for t, c in zip(REQUEST_TYPES, counts, strict=True)},
            "inquiry_breakdown": dict(counts[0]),
            "breakdown_per_type": {t: dict(c) for t, c in zip(REQUEST_TYPES, counts, strict=True)}}


async def bare_rate(client: Client, count: int, concurrency: int, activities: int, local: bool,
                    prefix: str) -> float:
    progress = Progress(f"{prefix}: bare {activities}{' local' if local else ''}", count)

    async def job(i: int) -> int:
        return await client.execute_workflow(BareWorkflow.run, BareInput(activities, local),
                                             id=f"{prefix}-{i:05d}", task_queue=BARE_TASK_QUEUE)

    rate, _ = await run_many(count, concurrency, job, progress)
    return rate


async def lifecycle_rate(client: Client, task_queue: str, policy: str, count: int, concurrency: int, prefix: str,
                         revisit_delay_s: float) -> tuple[float, list[WorkflowHandle]]:
    progress = Progress(f"{prefix}: full lifecycle", count)

    async def job(i: int) -> WorkflowHandle:
        return await drive_lifecycle(client, task_queue, policy, f"{prefix}-{i:05d}", "inquiry", revisit_delay_s)

    return await run_many(count, concurrency, job, progress)


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and the relative spread (max - min) / median of per-round figures."""
    med = statistics.median(values)
    return {"median": round(med, 2), "min": round(min(values), 2), "max": round(max(values), 2),
            "spread": round((max(values) - min(values)) / med, 2) if med else 0.0}


async def measure(client: Client, task_queue: str, policy: str, count: int, concurrency: int, rounds: int,
                  revisit_delay_s: float) -> dict[str, Any]:
    """Per-type histories first (they give K, the local activities of a happy path, and warm the worker), then
    `rounds` rounds, each a lifecycle batch and a bare batch (K ordinary no-op activities) back to back, their
    order alternating from round to round, plus a bare batch of K *local* activities. The headline ratio is the
    median of the per-round ratios (lifecycle rate / bare rate of the same round, so slow noise hits both);
    `ratio_rounds` has every round's and `ratio_spread` their (max - min) / median."""
    types = await per_type_events(client, task_queue, policy, revisit_delay_s)
    k = types["markers_per_type"]["inquiry"]
    retries_before = UPDATE_RETRIES["count"]
    spent = {"bare": 0.0, "bare_local": 0.0, "lifecycle": 0.0}
    per_round: dict[str, list[float]] = {"bare": [], "bare_local": [], "lifecycle": []}
    handles: list[WorkflowHandle] = []
    load: list[float] = []  # the machine's 1-minute load average after each round: the ratio moves with it

    async def life(r: int) -> None:
        rate, done = await lifecycle_rate(client, task_queue, policy, count, concurrency, f"life{r}",
                                          revisit_delay_s)
        per_round["lifecycle"].append(rate)
        handles.extend(done)

    async def bare(r: int) -> None:
        per_round["bare"].append(await bare_rate(client, count, concurrency, k, False, f"bare{r}"))

    for r in range(rounds):
        for step in ((life, bare) if r % 2 == 0 else (bare, life)):
            await step(r)
        per_round["bare_local"].append(await bare_rate(client, count, concurrency, k, True, f"barel{r}"))
        load.append(round(os.getloadavg()[0], 2))
    for name, rates in per_round.items():
        spent[name] = sum(count / rate for rate in rates)
    pooled = {name: rounds * count / seconds for name, seconds in spent.items()}
    ratios = [lr / br for lr, br in zip(per_round["lifecycle"], per_round["bare"], strict=True)]
    ratios_local = [lr / br for lr, br in zip(per_round["lifecycle"], per_round["bare_local"], strict=True)]
    sample = handles[:: max(1, len(handles) // 20)]
    totals = [(await history_counts(h))["total"] for h in sample]
    ratio = spread(ratios)
    return {
        "requests_per_round": count, "rounds": rounds, "concurrency": concurrency, "bare_activities": k,
        "revisit_delay_s": revisit_delay_s,
        "lifecycle_per_s": round(pooled["lifecycle"], 2), "bare_per_s": round(pooled["bare"], 2),
        "bare_local_per_s": round(pooled["bare_local"], 2),
        "ratio": ratio["median"], "ratio_spread": ratio["spread"], "ratio_min": ratio["min"],
        "ratio_max": ratio["max"], "ratio_rounds": [round(x, 2) for x in ratios],
        "ratio_pooled": round(pooled["lifecycle"] / pooled["bare"], 2),
        "ratio_vs_local": spread(ratios_local)["median"],
        "rates_per_round": {name: [round(x, 2) for x in rates] for name, rates in per_round.items()},
        "load_average_per_round": load,
        "update_retries_per_lifecycle": round((UPDATE_RETRIES["count"] - retries_before) / max(1, len(handles)), 1),
        "happy_path_events": round(sum(totals) / len(totals), 1), "happy_path_sampled": len(totals),
        **types,
    }
