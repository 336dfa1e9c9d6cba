"""Long-lived histories (issue 15): one request taking thousands of agent actions on the built-in continue-as-new
threshold (the pack's `continue_as_new_after`), on the time-skipping server.

    python -m bench.long_history [--actions 2500] [--json FILE]

Prints the number of runs the request used, the largest history of any run, the audit lines archived (every
action once, seq contiguous) and the time taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from cli.main import submit
from infra import temporal_env
from infra.logconfig import configure_logging
from models.actions import Act
from models.intake import Intake
from worker import build_worker

TASK_QUEUE = "kefu-long-history"


def act(kind: str, **fields: Any) -> Act:
    return Act.model_validate({"actor": {"id": "agent-li", "role": "agent"}, "action": {"kind": kind, **fields}})


async def run_lengths(client: Client, handle: WorkflowHandle) -> list[int]:
    """The number of events of each run of the request, first run first."""
    lengths, run_id = [], None
    while True:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return list(reversed(lengths))
        run_id = started.continued_execution_run_id


async def main(actions: int) -> dict[str, Any]:
    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as folder:
        archive = Archive(f"sqlite:///{Path(folder) / 'long.db'}")
        env = await WorkflowEnvironment.start_time_skipping(
            interceptors=temporal_env.client_interceptors(), test_server_existing_path=temporal_env.test_server(),
            data_converter=temporal_env.data_converter())
        try:
            await temporal_env.register_search_attributes(env.client)
            async with build_worker(env.client, archive, task_queue=TASK_QUEUE):
                intake = Intake.model_validate({
                    "request_id": "long-1", "channel": "phone", "type_hint": "complaint", "accepted_by": "agent-li",
                    "customer": {"id": "C-1", "name": "王小明", "phone": "13812345678"},
                    "description": "投诉：长期未解决的宽带故障"})
                handle, _ = await submit(env.client, intake, task_queue=TASK_QUEUE)
                began = time.monotonic()
                await handle.execute_update("act", act("respond", message="您好，已受理"))
                for n in range(actions):
                    await handle.execute_update("act", act("note", text=f"进展 {n}"))
                seconds = time.monotonic() - began
                lengths = await run_lengths(env.client, handle)
        finally:
            await env.shutdown()
        trail = archive.audit_trail("long-1")
        figures = {"actions": actions, "runs": len(lengths), "largest_history_events": max(lengths),
                   "events_per_run": lengths, "audit_lines": len(trail),
                   "audit_seq_contiguous": [e["seq"] for e in trail] == list(range(len(trail))),
                   "notes_archived": sum(e["action"] == "note" for e in trail),
                   "seconds": round(seconds, 1), "actions_per_second": round(actions / seconds, 1)}
        archive.close()
    assert figures["notes_archived"] == actions and figures["audit_seq_contiguous"], figures
    assert figures["runs"] > 1 and figures["largest_history_events"] < 51_200, figures
    return figures


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.long_history")
    parser.add_argument("--actions", type=int, default=2500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = asyncio.run(main(args.actions))
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    cli()
