"""The bare baseline: a workflow that runs K no-op activities one after another, and nothing else.

Its completions per second on the same dev server are the denominator of the throughput ratio: the lifecycle's
requests per second over this. `local=True` runs them as local activities (one marker each, like the lifecycle's
archive writes); the default runs ordinary activities, the baseline of the design notes (~11-13/s for K=5 here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

BARE_TASK_QUEUE = "kefu-bench-bare"


@dataclass
class BareInput:
    activities: int
    local: bool = False


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, spec: BareInput) -> int:
        for _ in range(spec.activities):
            if spec.local:
                await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=30))
            else:
                await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))
        return spec.activities


def bare_worker(client: Client, task_queue: str = BARE_TASK_QUEUE) -> Worker:
    """Same cache size as worker.build_worker; every other setting is the SDK default there too."""
    return Worker(client, task_queue=task_queue, workflows=[BareWorkflow], activities=[noop],
                  max_cached_workflows=2000)
