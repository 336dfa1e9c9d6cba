"""Fuzz: malformed intakes, updates and signals through the raw SDK never wedge a run nor leak PII (issue 15).

`inputs` seeded random inputs go to a real worker (`python worker.py`, its own OS process, every line it writes
captured) on a file-backed dev server through the untyped SDK, as another SDK or a hand-written client would send
them: `client.start_workflow("ServiceRequestWorkflow", raw, id=...)`, `handle.execute_update("act" | "confirm" |
"survey" | "escalation", raw)` and `handle.signal("escalate" | "incident", raw)`. The payloads are valid ones with
one to three mutations: fields missing, wrong types, nulls, lists, huge strings, odd unicode, unknown fields, PII in
the wrong place; or not objects at all (null, a string, a number, bytes and undecodable JSON via RawValue). Every
intake and message carries personal data: a phone (13812345678 and others), an email, a name.

Afterwards (every run's pending workflow task done):

* no history holds a WORKFLOW_TASK_FAILED event (other than the retried kinds of `benign`: a completion the server
  refused because a signal arrived, the deadlock detector on a starved CPU), and no run is left Running with its
  last workflow task failed or timed out (wedged);
* every run whose intake was invalid (as the workflow decodes it, or under another request's workflow id) failed
  with InvalidIntake and left a `rejected` archive row without customer data; every valid run is still Running and
  answers its status query;
* none of the injected phones, emails or names appears in the worker's log output (nor the dev server's log).

    python -m bench.fuzz --inputs 2000 --seed 1 [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from archive.store import Archive
from bench.chaos import DevServer, WorkerProcess, quiet_runtime
from domain.pii import scrub
from infra.logconfig import configure_logging
from models.actions import ACTION_KINDS, ROLE_RANK
from models.intake import Intake, workflow_id_for
from worker import connect_when_ready

WORKFLOW = "ServiceRequestWorkflow"
UPDATES = ("act", "confirm", "survey", "escalation")
SIGNALS = ("escalate", "incident")
CHANNELS = ("phone", "web", "mini_program", "email", "app", "wechat", "weibo")
SURNAMES = ("欧阳", "司马", "诸葛", "上官", "慕容", "东方")
GIVEN = "望舒明月清风晚晴雨桐若溪星河嘉禾思远念慈知秋听澜予安景行怀瑾云岫书瑶沐辰亦凡"
LATIN = ("Zhang Weiqiang", "Émilie Dupont", "Olúwásèun Adébáyọ̀", "Åsa Lindqvist")
ODD = ("", " ", "\x00", "\u200b\u200d", "\u202e反转", "👩‍👩‍👧‍👦", "e\u0301\u0301\u0301", "𠀋𠀋", "\ufeff", "NaN",
       "null", "'; DROP TABLE requests; --", "{{ 7*7 }}", "%s%s%n", "../../etc/passwd", "\r\nX-Injected: 1", "🇨🇳" * 40)
TIMEOUT = timedelta(seconds=30)


@dataclass
class Pii:
    """Every personal datum injected, with the inputs that carried it, to look for in the logs afterwards."""
    owners: dict[str, set[int]] = field(default_factory=dict)  # value -> input numbers
    kinds: dict[str, str] = field(default_factory=dict)  # value -> "phone", "email" or "name"

    def person(self, rng: random.Random, n: int) -> dict[str, str]:
        """A new person, each datum unique to input n (so a leak names its input)."""
        def fresh(draw: Callable[[], str]) -> str:
            value = draw()
            while value in self.owners:
                value = draw()
            return value

        phone = "13812345678" if n == 0 else fresh(lambda: f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}")
        email = f"fuzz.{rng.choice(('li', 'wang', 'chen', 'alice'))}{n}@example.com"
        name = (rng.choice(LATIN) + f" {n:05d}" if rng.random() < 0.3
                else fresh(lambda: rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2))))
        person = {"phone": phone, "email": email, "name": name}
        for kind, value in person.items():
            self.owners.setdefault(value, set()).add(n)
            self.kinds[value] = kind
        return person

    def injected(self) -> dict[str, int]:
        return dict(Counter(f"{kind}s" for kind in self.kinds.values()))

    def found_in(self, text: str) -> list[str]:
        """Injected values present in `text`: as written, or JSON-escaped (a name in an ASCII JSON log line)."""
        return sorted(v for v in self.owners if v in text or json.dumps(v)[1:-1] in text)


def text_with(person: dict[str, str], rng: random.Random) -> str:
    return rng.choice([f"{person['name']}来电，回电 {person['phone']}", f"请发邮件到 {person['email']}",
                       f"客户 {person['name']} ({person['phone']}, {person['email']}) 反映宽带无法使用", "已处理"])


def junk(rng: random.Random, person: dict[str, str]) -> Any:
    """A value of the wrong kind, size or content."""
    roll = rng.random()
    if roll < 0.12:
        return None
    if roll < 0.24:
        return rng.choice([0, -1, 2**63, 3.14, float("inf"), True, False])
    if roll < 0.34:
        return [text_with(person, rng), None, 1]
    if roll < 0.42:
        return {"nested": {"phone": person["phone"]}, "name": person["name"]}
    if roll < 0.52:  # huge: beyond every max_length; rarely beyond the server's payload limit
        size = rng.choice([4001, 20_000, 200_000]) if rng.random() < 0.97 else 2_500_000
        return (rng.choice("客服xé🙂") * size)[:size]
    if roll < 0.72:
        return rng.choice(ODD) + rng.choice(["", person["phone"], person["email"], person["name"]])
    return rng.choice([person["phone"], person["email"], person["name"], f"+86 {person['phone']}"])


def mutate(raw: dict[str, Any], rng: random.Random, person: dict[str, str], times: int) -> dict[str, Any]:
    """Drop, replace or add `times` fields (top level or one level down)."""
    out = json.loads(json.dumps(raw))
    for _ in range(times):
        target = out
        nested = [key for key, value in out.items() if isinstance(value, dict)]
        if nested and rng.random() < 0.4:
            target = out[rng.choice(nested)]
        keys = list(target)
        op = rng.random()
        if op < 0.25 and keys:
            del target[rng.choice(keys)]
        elif op < 0.85 and keys:
            target[rng.choice(keys)] = junk(rng, person)
        else:
            target[rng.choice(["extra", "customer_phone", "备注", "\u0000", "kind"])] = junk(rng, person)
    return out


def not_an_object(rng: random.Random, person: dict[str, str], undecodable: bool = True) -> Any:
    """A payload that is not a JSON object, or (undecodable) not JSON at all."""
    choices: list[Any] = [
        None, [], [person], person["phone"], 42,
        RawValue(Payload(metadata={"encoding": b"binary/plain"}, data=rng.randbytes(rng.choice([0, 16, 4096])))),
    ]
    if undecodable:
        truncated = b'{"customer": {"phone": "' + person["phone"].encode() + b'"'
        choices += [RawValue(Payload(metadata={"encoding": b"json/plain"}, data=truncated)),
                    RawValue(Payload(metadata={"encoding": b"application/x-fuzz"}, data=person["email"].encode()))]
    return rng.choice(choices)


def intake_raw(request_id: str, person: dict[str, str], rng: random.Random) -> dict[str, Any]:
    customer: dict[str, Any] = {"id": f"C-{request_id}", "name": person["name"], "phone": person["phone"]}
    if rng.random() < 0.5:
        customer["email"] = person["email"]
    return {"request_id": request_id, "policy": "service_center", "channel": rng.choice(CHANNELS),
            "customer": customer, "description": text_with(person, rng),
            "type_hint": rng.choice(["inquiry", "complaint", "repair", None])}


def actor(rng: random.Random) -> dict[str, Any]:
    return {"id": rng.choice(["agent-li", "agent-wang", "lead-zhao", "sup-qian"]), "role": rng.choice([*ROLE_RANK])}


def message_raw(name: str, person: dict[str, str], rng: random.Random) -> dict[str, Any]:
    """A well-formed payload of update or signal `name` (its content may still be refused)."""
    said = text_with(person, rng)
    if name == "act":
        kind = rng.choice(ACTION_KINDS)
        fields = {"respond": {"message": said}, "note": {"text": said}, "ask_customer": {"question": said},
                  "customer_reply": {"text": said}, "assign": {"owner": "agent-wang"}, "accept": {"comment": said},
                  "decline": {"reason": said}, "transfer": {"department": "technical", "reason": said},
                  "reclassify": {"request_type": "complaint", "reason": said},
                  "extend": {"by": "24h", "reason": said, "customer_notice": said},
                  "acknowledge": {"comment": said}, "resolve": {"summary": said, "root_cause": said},
                  "check": {"passed": True, "remarks": said}, "reevaluate": {"reason": said}}.get(kind, {})
        return {"actor": actor(rng), "action": {"kind": kind, **fields}}
    if name == "confirm":
        return {"accepted": rng.random() < 0.7, "comment": said}
    if name == "survey":
        return {"score": rng.randrange(0, 120), "nps": rng.randrange(0, 12), "resolved": True, "comment": said}
    if name in ("escalation", "escalate"):
        return {"actor": actor(rng), "reason": said, "to_level": rng.choice([None, 1, 2, 3, 9])}
    return {"incident_id": f"inc-{person['phone']}", "seq": rng.randrange(0, 5),
            "kind": rng.choice(["linked", "progress", "resolved", "reviewed"]), "level": 1, "title": said}


def payload(valid: dict[str, Any], rng: random.Random, person: dict[str, str], clean: float,
            undecodable: bool = True) -> Any:
    roll = rng.random()
    if roll < clean:
        return valid
    if roll < clean + 0.1:
        return not_an_object(rng, person, undecodable)
    return mutate(valid, rng, person, rng.randint(1, 3))


CONVERTER = pydantic_data_converter.payload_converter  # what the worker decodes with (the codec is transparent)
UNDECODABLE = object()


def decoded(raw: Any) -> Any:
    """What the workflow receives for `raw` (JSON turns tuples into lists, inf into null, ...); UNDECODABLE when it
    does not decode at all (truncated JSON, an unknown encoding)."""
    try:
        payloads = [raw.payload] if isinstance(raw, RawValue) else CONVERTER.to_payloads([raw])
        return CONVERTER.from_payloads(payloads)[0]
    except Exception:
        return UNDECODABLE


def intake_valid(value: Any, workflow_id: str) -> bool:
    try:
        intake = Intake.model_validate(value)
    except ValidationError:
        return False
    return workflow_id == workflow_id_for(intake.request_id)


@dataclass
class Input:
    n: int
    kind: str  # "start", "update" or "signal"
    name: str  # the workflow type, or the update or signal name
    raw: Any
    workflow_id: str = ""  # a start's
    valid: bool = False  # a start: the intake validates as the workflow decodes it, under its own workflow id
    undecodable: bool = False  # not JSON, or of an unknown encoding: no handler ever sees it
    target: int = -1  # a message: the n of the start it goes to

    @property
    def shape(self) -> str:
        return f"{'undecodable ' if self.undecodable else ''}{self.kind}"


def plan(inputs: int, seed: int, pii: Pii, undecodable: bool = True) -> list[Input]:
    """The whole run, drawn from one seeded generator before anything is sent: three in ten a start (a quarter of
    them valid), the rest updates and signals, nine in ten to a valid run, one in ten to a refused one."""
    rng = random.Random(seed)
    plans: list[Input] = []
    valid_runs: list[int] = []
    refused_runs: list[int] = []
    for n in range(inputs):
        person = pii.person(rng, n)
        if not valid_runs or rng.random() < 0.3:
            own = f"fz{seed}-{n:05d}"
            raw = payload(intake_raw(own, person, rng), rng, person, clean=0.25, undecodable=undecodable)
            workflow_id = workflow_id_for(own)
            if rng.random() < 0.05:  # a run under another request's workflow id (issue 14)
                workflow_id = workflow_id_for(f"{own}-other")
            value = decoded(raw)
            item = Input(n, "start", WORKFLOW, raw, workflow_id, valid=intake_valid(value, workflow_id),
                         undecodable=value is UNDECODABLE)
            plans.append(item)
            (valid_runs if item.valid else refused_runs).append(n)
            continue
        target = rng.choice(refused_runs if refused_runs and rng.random() < 0.1 else valid_runs)
        kind, name = ("update", rng.choice(UPDATES)) if rng.random() < 0.6 else ("signal", rng.choice(SIGNALS))
        raw = payload(message_raw(name, person, rng), rng, person, clean=0.3, undecodable=undecodable)
        plans.append(Input(n, kind, name, raw, target=target, undecodable=decoded(raw) is UNDECODABLE))
    return plans


@dataclass
class Outcome:
    counts: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    started: dict[int, Input] = field(default_factory=dict)  # n -> the start the server took


async def send(client: Client, item: Input, task_queue: str, out: Outcome) -> None:
    """One input; every outcome is counted by kind (applied, refused, refused by the server, ...)."""
    what = (f"{item.kind} {item.name}" if item.kind != "start" else f"start {'valid' if item.valid else 'invalid'}")
    what += " (undecodable)" if item.undecodable else ""
    try:
        if item.kind == "start":
            await client.start_workflow(WORKFLOW, item.raw, id=item.workflow_id, task_queue=task_queue,
                                        rpc_timeout=TIMEOUT)
            out.started[item.n] = item
            out.counts[what] += 1
            return
        handle = client.get_workflow_handle(out.started[item.target].workflow_id)
        if item.kind == "update":
            await handle.execute_update(item.name, item.raw, result_type=dict, rpc_timeout=TIMEOUT)
            out.counts[f"{what}: applied"] += 1
        else:
            await handle.signal(item.name, item.raw, rpc_timeout=TIMEOUT)
            out.counts[f"{what}: sent"] += 1
    except WorkflowUpdateFailedError:
        out.counts[f"{what}: refused"] += 1
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        out.counts[f"{what}: timed out"] += 1
        out.unexpected.append(f"#{item.n} {what}: timed out")
    except RPCError as exc:  # the server refused it: too large, or the run has ended
        out.counts[f"{what}: refused by the server ({exc.status.name})"] += 1
    except Exception as exc:
        out.counts[f"{what}: {type(exc).__name__}"] += 1
        out.unexpected.append(f"#{item.n} {what}: {type(exc).__name__}")


STUCK_ATTEMPT = 3  # a workflow task on its third attempt is failing, not late


async def settle(client: Client, ids: list[str], timeout: float) -> list[str]:
    """Until no run has a workflow task pending (signals and rejections processed), or only runs whose task keeps
    failing do; returns the runs still pending at the timeout."""
    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        still = []
        for workflow_id in pending:
            described = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=TIMEOUT)
            raw = described.raw_description
            if raw.HasField("pending_workflow_task") and raw.pending_workflow_task.attempt < STUCK_ATTEMPT:
                still.append(workflow_id)
        pending = still
        if pending:
            await asyncio.sleep(1.0)
    return pending


def benign(cause: int, message: str) -> str | None:
    """Why a failed workflow task is not a wedge, or None: the server refused a completion because new events (a
    signal) arrived meanwhile (retried at once, by design); or the SDK's deadlock detector failed an activation that
    took over 2 s of wall time on a starved CPU (retried; tests/polling.py)."""
    if cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND:
        return "unhandled command"
    return "deadlock detector (load)" if "[TMPRL1101]" in message else None


async def inspect(handle: WorkflowHandle) -> dict[str, Any]:
    """Status, failure type, workflow task failures (cause and first line) and whether the last one failed."""
    described = await handle.describe(rpc_timeout=TIMEOUT)
    history = await handle.fetch_history(rpc_timeout=TIMEOUT)
    failed: list[str] = []
    retried: list[str] = []
    last_task, failure = None, ""
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            if why := benign(attrs.cause, attrs.failure.message):
                retried.append(why)
            else:
                first_line = scrub(attrs.failure.message.splitlines()[0][:100]) if attrs.failure.message else ""
                failed.append(f"{WorkflowTaskFailedCause.Name(attrs.cause)}: {first_line}")
        if event.event_type in (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
                                EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED):
            last_task = event.event_type
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            failure = event.workflow_execution_failed_event_attributes.failure.application_failure_info.type
    running = described.status == WorkflowExecutionStatus.RUNNING
    return {"status": WorkflowExecutionStatus(described.status).name, "failure_type": failure,
            "task_failures": failed, "benign_task_failures": retried,
            "wedged": running and last_task != EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED}


async def fuzz(inputs: int = 2000, seed: int = 1, work: Path | None = None, concurrency: int = 8,
               undecodable: bool = True) -> dict[str, Any]:
    """Send `inputs` fuzzed inputs to a real worker and check the runs, the archive and the logs. Returns figures.
    undecodable=False leaves out payloads that are not JSON: two known bugs (tests/workflow/test_fuzz.py)."""
    work = work or Path(tempfile.mkdtemp(prefix="kefu-fuzz-"))
    policy_dir = work / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{work / 'fuzz.db'}"
    task_queue = f"kefu-fuzz-{seed}"
    pii = Pii()
    plans = plan(inputs, seed, pii, undecodable)
    began = time.monotonic()
    server = DevServer(work / "temporal")
    address = await server.start()
    worker = WorkerProcess(address, database_url, task_queue, policy_dir, work / "worker.log")
    out = Outcome()
    try:
        client = await connect_when_ready(address, quiet_runtime())
        worker.start()
        if not await worker.ready():
            raise RuntimeError(f"the worker did not start; see {work / 'worker.log'}")
        gate = asyncio.Semaphore(concurrency)

        async def bounded(item: Input) -> None:
            async with gate:
                await send(client, item, task_queue, out)

        tasks: list[asyncio.Task[None]] = []
        for item in plans:
            if item.kind == "start":  # in order: a message only goes to a run already started
                await send(client, item, task_queue, out)
            elif item.target in out.started:
                tasks.append(asyncio.create_task(bounded(item)))
            else:
                out.counts[f"{item.kind} {item.name}: its run was never started"] += 1
        await asyncio.gather(*tasks)
        sent_s = time.monotonic() - began
        ids = [item.workflow_id for item in out.started.values()]
        unsettled = await settle(client, ids, timeout=max(120.0, len(ids) * 0.5))
        runs = {n: await inspect(client.get_workflow_handle(item.workflow_id)) for n, item in out.started.items()}
        answering = 0
        for n, item in out.started.items():
            if item.valid and runs[n]["status"] == "RUNNING":
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(item.workflow_id).query("status", rpc_timeout=TIMEOUT)
                    answering += 1
        for n, item in out.started.items():
            if runs[n]["status"] == "RUNNING":
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(item.workflow_id).terminate("fuzz run done")
    finally:
        worker.stop()
        await server.stop()
    archive = Archive(database_url)
    try:
        rejected = archive.list_requests(stage="rejected", limit=inputs + 1)
    finally:
        archive.close()
    valid = [n for n, item in out.started.items() if item.valid]
    invalid = [n for n, item in out.started.items() if not item.valid]
    by_n = {item.n: item for item in plans}
    worker_log = (work / "worker.log").read_text(encoding="utf-8", errors="replace")
    server_log = (work / "temporal" / "temporal-server.log").read_text(encoding="utf-8", errors="replace")
    leaked = pii.found_in(worker_log)
    leaked_by = Counter(by_n[n].shape for value in leaked for n in pii.owners[value])
    wedged = [n for n, run in runs.items() if run["wedged"]]
    return {
        "inputs": inputs, "seed": seed, "counts": dict(sorted(out.counts.items())), "unexpected": out.unexpected,
        "runs": len(runs), "valid_runs": len(valid), "invalid_intakes": len(invalid),
        "undecodable_intakes": sum(out.started[n].undecodable for n in invalid),
        "runs_with_task_failures": sum(bool(run["task_failures"]) for run in runs.values()),
        "task_failures": dict(Counter(line for run in runs.values() for line in run["task_failures"]).most_common(8)),
        "benign_task_failures": dict(Counter(why for run in runs.values() for why in run["benign_task_failures"])),
        "wedged": len(wedged), "wedged_by_shape": dict(Counter(out.started[n].shape for n in wedged)),
        "invalid_still_running": sum(runs[n]["status"] == "RUNNING" for n in invalid),
        "invalid_without_invalid_intake_failure": sum(runs[n]["failure_type"] != "InvalidIntake" for n in invalid),
        "valid_not_running": sum(runs[n]["status"] != "RUNNING" for n in valid),
        "valid_answering": answering, "unsettled": len(unsettled),
        "rejected_rows": len(rejected),
        "rejected_rows_with_customer_data": sum(bool(row["customer_name"] or row["customer_phone"]
                                                     or row["customer_email"] or row["description"])
                                                for row in rejected),
        "pii_injected": pii.injected(),
        "pii_in_worker_log": dict(Counter(f"{pii.kinds[value]}s" for value in leaked)),
        "pii_in_worker_log_from": dict(leaked_by),
        "pii_in_server_log": len(pii.found_in(server_log)),
        "worker_log_lines": worker_log.count("\n"), "sent_s": round(sent_s, 1),
        "wall_s": round(time.monotonic() - began, 1), "work_dir": str(work),
    }


def fuzz_problems(result: dict[str, Any]) -> list[str]:
    """Each invariant that does not hold, as one line; empty when the run is clean."""
    checks = {
        "workflow task failures": result["runs_with_task_failures"] == 0,
        "wedged runs": result["wedged"] == 0,
        "invalid intakes still running": result["invalid_still_running"] == 0,
        "invalid intakes that did not fail with InvalidIntake": result["invalid_without_invalid_intake_failure"] == 0,
        "valid runs that ended": result["valid_not_running"] == 0,
        "valid runs not answering": result["valid_answering"] == result["valid_runs"],
        "runs never settled": result["unsettled"] == 0,
        "rejected rows != decodable invalid intakes":
            result["rejected_rows"] == result["invalid_intakes"] - result["undecodable_intakes"],
        "rejected rows with customer data": result["rejected_rows_with_customer_data"] == 0,
        "unexpected client outcomes": not result["unexpected"],
        "PII in the worker log": not result["pii_in_worker_log"],
        "PII in the dev server log": result["pii_in_server_log"] == 0,
    }
    return [name for name, ok in checks.items() if not ok]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-undecodable", action="store_true",
                        help="leave out payloads that are not JSON (known bugs: tests/workflow/test_fuzz.py)")
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    result = asyncio.run(fuzz(args.inputs, args.seed, concurrency=args.concurrency,
                              undecodable=not args.no_undecodable))
    problems = fuzz_problems(result)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print("OK" if not problems else f"FAILED: {'; '.join(problems)}")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
