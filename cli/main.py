"""kefu: the command line for backend systems and supervisors.

    kefu submit --file intake.json           start a service request (or reach the existing one on a retry)
    kefu status ID [--json]                  full state from the workflow's `status` query
    kefu act ID KIND --actor A --role R ...  agent actions (respond, note, ask_customer, resolve, …)
    kefu confirm ID / kefu survey ID         the customer's confirmation and revisit survey
    kefu escalate ID --actor A --reason …    a supervisor's escalation (update `escalation`; refusals exit 2)
    kefu escalate-bulk [filters] --actor A --reason … [--yes]   escalate every open request a filter matches
    kefu list [filters]                      requests from the archive projection
    kefu show ID                             one request's archive row and full audit trail
    kefu report --from DATE --to DATE        KPIs (SEEDS §9) as text, --json or a --html page
    kefu schema                              JSON Schema of every message, for other SDKs
    kefu sla POLICY CLASS [--start T]        explain deadlines without starting anything
    kefu policy list|show ID|check FILE      policy packs
    kefu db upgrade|downgrade REV|current    archive schema migrations (Alembic; production's only schema path)
    kefu audit verify ID|--all               recompute the audit trails' hash chains; exit 2 when one does not hold
    kefu doctor [--require-encryption]       health checks, one line each; exit 0 healthy, 2 otherwise
    kefu agent import|add|list|remove        the agent directory that dispatch assigns from (docs/assignment.md)
    kefu incident declare|link|update|resolve|review|show|list   incidents 突发事件 (docs/incidents.md)
    kefu serve [--port 8000]                 the HTTP API (docs/api.md)
    kefu token issue --sub ID --role R       a bearer token from kefu's own issuer; kefu login keeps one for the CLI
With a token (KEFU_TOKEN or `kefu login`) commands act as its subject and role; without one, as --actor/--role, signed
with the local principal key (development mode, docs/api.md).
Every command takes --json. Errors are one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from api.errors import ApiError
from api.submit import check_intake, submit
from api.submit import wait_for_status as wait_for_status  # re-exported: demo, tests and benches import it here
from cli import agents as agents_cli
from cli import incidents as incident_cli
from cli import serve as serve_cli
from cli import tokens as tokens_cli
from cli.common import CliError, Reported, connect, emit, parse, read_text, run_update, validation_message
from infra import temporal_env
from models.actions import ACTION_KINDS, Act, Confirm, EscalateRequest, SurveyAnswer
from models.intake import Intake, workflow_id_for
from models.status import RequestStatus
from policies.loader import PolicyError, check_pack, get_pack, load_all
from workflows.service_request import ServiceRequestWorkflow


# --- submit -------------------------------------------------------------------------------------------------------
def build_intake(args: argparse.Namespace) -> Intake:
    raw: dict[str, Any] = {}
    if args.file:
        text = read_text(args.file, "--file")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"--file: {args.file} is not JSON: {exc.msg} at line {exc.lineno}") from exc
        if not isinstance(raw, dict):
            raise CliError(f"--file: {args.file} must hold one JSON object (the intake)")
    flags = {"request_id": args.request_id, "policy": args.policy, "channel": args.channel,
             "description": args.description, "type_hint": args.type, "category": args.category,
             "amount": args.amount, "urgency": args.urgency, "accepted_by": args.accepted_by,
             "first_contact_answer": args.answer}
    raw.update({key: value for key, value in flags.items() if value is not None})
    customer = {"id": args.customer_id, "name": args.name, "phone": args.phone, "email": args.email,
                "language": args.language}
    if any(value is not None for value in customer.values()):
        raw["customer"] = {**raw.get("customer", {}), **{k: v for k, v in customer.items() if v is not None}}
    raw["funds_at_risk"] = raw.get("funds_at_risk", False) or args.funds_at_risk
    raw["security"] = raw.get("security", False) or args.security
    intake = parse(Intake, raw)
    check_intake(intake)
    return intake


# --- actions ------------------------------------------------------------------------------------------------------
ACTION_FLAGS = {  # CLI flag -> action field
    "message": "message", "text": "text", "question": "question", "owner": "owner", "department": "department",
    "reason": "reason", "type": "request_type", "category": "category", "priority": "priority",
    "grade": "complaint_grade", "by": "by", "notice": "customer_notice", "summary": "summary",
    "root_cause": "root_cause", "decision": "decision", "remarks": "remarks", "comment": "comment", "eta": "eta",
    "to_owner": "to_owner",
}


def build_act(args: argparse.Namespace) -> Act:
    action: dict[str, Any] = {"kind": args.kind}
    action.update({field: getattr(args, flag) for flag, field in ACTION_FLAGS.items()
                   if getattr(args, flag) is not None})
    if args.customer_visible:
        action["customer_visible"] = True
    if args.joint:
        action["joint"] = True
    if args.kind == "check":
        action["passed"] = not args.failed
    return parse(Act, {"actor": {"id": args.actor, "role": args.role}, "action": action})


async def update(handle: WorkflowHandle, name: str, payload: BaseModel) -> RequestStatus:
    return await run_update(handle, name, payload, RequestStatus)


def status_text(st: dict[str, Any]) -> str:
    lines = [f"{st['ticket'] or '(not registered yet)'}  {st['request_id']}  policy {st['policy_id']} "
             f"v{st['policy_version']}",
             f"stage {st['stage']}{' (' + st['sub_state'] + ')' if st['sub_state'] else ''}  type "
             f"{st['request_type']}  priority {st['priority']}  grade {st['complaint_grade'] or '—'}",
             f"owner {st['owner'] or '—'}  complaint owner {st['complaint_owner'] or '—'}  department "
             f"{st['department']}  escalation level {st['escalation_level']} ({st['escalation_role']})"]
    for name, c in st["clocks"].items():
        state = "stopped" if c["stopped_at"] else ("paused" if c["paused"] else "running")
        lines.append(f"  {name:<15} due {c['deadline']}  {state}{'  BREACHED' if c['breached'] else ''}")
    lines.append("timeline: " + ", ".join(f"{k} {v}" for k, v in st["timeline"].items()))
    if st["satisfaction"] is not None:
        lines.append(f"satisfaction {st['satisfaction']}  reopen count {st['reopen_count']}  outcome {st['outcome']}")
    return "\n".join(lines)


# --- archive views --------------------------------------------------------------------------------------------------
def list_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    from archive.reads import console_list  # the archive (SQLAlchemy) loads only for commands that read it
    from archive.store import Archive

    return console_list(Archive(), stage=args.stage, request_type=args.type, priority=args.priority,
                        policy_id=args.policy, owner=args.owner, level=args.level, overdue=args.overdue,
                        due_within=args.due_within, limit=args.limit)


def table_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no requests match"
    cols = ["ticket", "request_id", "policy_id", "stage", "request_type", "priority", "escalation_level", "owner",
            "next_deadline", "breached"]
    cells = [[str(r.get(c) if r.get(c) is not None else "—")[:25] for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*cols), *(fmt.format(*row) for row in cells)])


# --- bulk escalation and the KPI report ------------------------------------------------------------------------------
def progress_reporter(enabled: bool, label: str) -> Callable[[int, int], None]:
    """A progress line on stderr, redrawn in place; a no-op unless enabled (stderr a TTY, or --progress)."""
    def show(done: int, total: int) -> None:
        if not enabled:
            return
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{label} {done}/{total}{end}")
        sys.stderr.flush()

    return show


def wants_progress(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def escalate_request(actor: str, role: str, reason: str, to_level: int | None) -> EscalateRequest:
    return parse(EscalateRequest, {"actor": {"id": actor, "role": role}, "reason": reason, "to_level": to_level})


async def bulk_escalate(client: Client, rows: list[dict[str, Any]], actor: str, reason: str, *,
                        role: str = "supervisor", to_level: int | None = None, concurrency: int = 8,
                        on_progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Signal `escalate` to the workflow of every archive row (workflow id = the row's workflow_id).
    Returns one result per row, in row order: {request_id, workflow_id, ok, error}."""
    request = escalate_request(actor, role, reason, to_level)
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(row: dict[str, Any]) -> dict[str, Any]:
        nonlocal done
        result: dict[str, Any] = {"request_id": row["request_id"], "ticket": row.get("ticket"),
                                  "workflow_id": row["workflow_id"], "ok": True, "error": None}
        async with gate:
            try:
                await client.get_workflow_handle(row["workflow_id"]).signal("escalate", request)
            except RPCError as exc:
                result.update(ok=False, error=(exc.message or str(exc)).splitlines()[0])
        done += 1
        if on_progress:
            on_progress(done, len(rows))
        return result

    return list(await asyncio.gather(*(one(row) for row in rows)))


def confirm_bulk(rows: list[dict[str, Any]], args: argparse.Namespace) -> bool:
    """Ask before escalating; --yes skips. Without a terminal to ask on, refuse rather than guess."""
    if args.yes:
        return True
    shown = ", ".join(r.get("ticket") or r["request_id"] for r in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    target = f"to level {args.to_level}" if args.to_level is not None else "one level up"
    if not sys.stdin.isatty():
        raise CliError(f"{len(rows)} requests match ({shown}{more}); add --yes to escalate them {target}")
    sys.stderr.write(f"{len(rows)} requests match: {shown}{more}\nescalate them {target} as "
                     f"{args.role}:{args.actor}? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def bulk_text(d: dict[str, Any]) -> str:
    lines = [f"escalated {d['escalated']} of {d['matched']} requests"]
    lines += [f"  failed {r['ticket'] or r['request_id']}: {r['error']}" for r in d["results"] if not r["ok"]]
    return "\n".join(lines)


def run_report(args: argparse.Namespace) -> None:
    from api import kpi as kpi_report  # the archive (SQLAlchemy) loads only for commands that read it
    from archive.store import Archive
    from reports import kpi

    start, end = kpi_report.period(args.date_from, args.date_to, ("--from", "--to"))
    figures = kpi_report.figures(Archive(), start, end, (args.date_from, args.date_to), args.policy,
                                 progress_reporter(wants_progress(args), "reading breach events"))
    if args.html:
        from reports.html import write

        try:
            path = write(figures, args.html)
        except OSError as exc:
            raise CliError(f"--html: cannot write {args.html}: {exc.strerror}") from exc
        if not args.json:
            print(f"wrote {path} ({figures['volume']['total']} requests)")
    if args.json or not args.html:
        emit(figures, args.json, kpi.render_text)


def schemas() -> dict[str, Any]:
    """JSON Schema of the intake and of every signal, update and query, generated from the pydantic models."""
    return {
        "workflow_type": "ServiceRequestWorkflow",
        "task_queue": temporal_env.TASK_QUEUE,
        "workflow_id": "kefu-sr-<request_id>",
        "start": Intake.model_json_schema(),
        "updates": {"act": Act.model_json_schema(), "confirm": Confirm.model_json_schema(),
                    "survey": SurveyAnswer.model_json_schema(), "escalation": EscalateRequest.model_json_schema()},
        "signals": {"escalate": EscalateRequest.model_json_schema()},
        "queries": {"status": RequestStatus.model_json_schema()},
        "result": RequestStatus.model_json_schema(),
    }


# --- argument parsing -------------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kefu", description="Customer-service requests on Temporal.")
    sub = p.add_subparsers(dest="command", required=True)

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_text)
        c.add_argument("--json", action="store_true", help="machine-readable output")
        return c

    s = cmd("submit", "start a service request")
    s.add_argument("--file", help="intake JSON (flags override its fields)")
    for flag in ("request-id", "policy", "channel", "description", "type", "category", "amount", "urgency",
                 "accepted-by", "answer", "customer-id", "name", "phone", "email", "language"):
        s.add_argument(f"--{flag}")
    s.add_argument("--funds-at-risk", action="store_true")
    s.add_argument("--security", action="store_true")
    s.add_argument("--no-wait", action="store_true", help="return once started, without waiting for the ticket")

    st = cmd("status", "full state of a request")
    st.add_argument("request_id")

    a = cmd("act", "an agent action")
    a.add_argument("request_id")
    a.add_argument("kind", choices=ACTION_KINDS)
    a.add_argument("--actor", help="default: the token's subject (required without a token)")
    a.add_argument("--role", help="default: the token's role, else agent")
    for flag in ACTION_FLAGS:
        a.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
    a.add_argument("--customer-visible", action="store_true")
    a.add_argument("--joint", action="store_true")
    a.add_argument("--failed", action="store_true", help="check: the checker refuses the resolution")

    c = cmd("confirm", "the customer confirms (or rejects) the result")
    c.add_argument("request_id")
    c.add_argument("--reject", action="store_true")
    c.add_argument("--comment", default="")

    sv = cmd("survey", "the customer's revisit survey")
    sv.add_argument("request_id")
    sv.add_argument("--score", type=int, required=True)
    sv.add_argument("--nps", type=int)
    sv.add_argument("--unresolved", action="store_true")
    sv.add_argument("--comment", default="")

    e = cmd("escalate", "a supervisor escalates a request")
    e.add_argument("request_id")
    e.add_argument("--actor", help="default: the token's subject (required without a token)")
    e.add_argument("--role", help="default: the token's role, else supervisor")
    e.add_argument("--reason", required=True)
    e.add_argument("--to-level", type=int)

    ls = cmd("list", "requests from the archive")
    ls.add_argument("--stage")
    ls.add_argument("--type")
    ls.add_argument("--priority")
    ls.add_argument("--policy")
    ls.add_argument("--owner")
    ls.add_argument("--level", type=int, help="escalation level at least")
    ls.add_argument("--overdue", action="store_true")
    ls.add_argument("--due-within", type=int, metavar="MINUTES")
    ls.add_argument("--limit", type=int, default=200)

    eb = cmd("escalate-bulk", "escalate every open request a filter matches (archive filters as in list)")
    for flag in ("stage", "type", "priority", "policy", "owner"):
        eb.add_argument(f"--{flag}")
    eb.add_argument("--level", type=int, help="escalation level at least")
    eb.add_argument("--overdue", action="store_true")
    eb.add_argument("--due-within", type=int, metavar="MINUTES")
    eb.add_argument("--limit", type=int, default=1000)
    eb.add_argument("--actor", help="default: the token's subject (required without a token)")
    eb.add_argument("--role", help="default: the token's role, else supervisor")
    eb.add_argument("--reason", required=True)
    eb.add_argument("--to-level", type=int)
    eb.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    eb.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")

    rp = cmd("report", "KPI report from the archive (SEEDS §9)")
    rp.add_argument("--from", dest="date_from", required=True, metavar="DATE", help="YYYY-MM-DD (Asia/Shanghai)")
    rp.add_argument("--to", dest="date_to", required=True, metavar="DATE", help="YYYY-MM-DD, inclusive")
    rp.add_argument("--policy")
    rp.add_argument("--html", metavar="FILE", help="write a self-contained HTML page with charts")
    rp.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")

    sh = cmd("show", "archive row and full audit trail")
    sh.add_argument("request_id")

    cmd("schema", "JSON Schema of every message")

    sl = cmd("sla", "explain deadlines without starting anything")
    sl.add_argument("policy")
    sl.add_argument("service_class")
    sl.add_argument("--start", help="ISO time with offset (default now)")

    pol = cmd("policy", "policy packs")
    pol.add_argument("action", choices=["list", "show", "check"])
    pol.add_argument("target", nargs="?")

    db = cmd("db", "archive schema migrations (DATABASE_URL): upgrade, downgrade REV, current, history")
    db.add_argument("action", choices=["upgrade", "downgrade", "current", "history"])
    db.add_argument("revision", nargs="?", help="upgrade: target (default head); downgrade: target (required, "
                    "e.g. -1 or base)")

    au = cmd("audit", "verify: recompute the audit trails' hash chains (DATABASE_URL); exit 2 when one does not hold")
    au.add_argument("action", choices=["verify"])
    au.add_argument("id", nargs="?", metavar="ID", help="a request or incident id")
    au.add_argument("--all", action="store_true", help="every request's and incident's chain")

    agents_cli.add_parser(cmd)
    incident_cli.add_parser(cmd)
    serve_cli.add_parser(cmd)
    tokens_cli.add_parser(cmd)

    dr = cmd("doctor", "check the Temporal connection, namespace, search attributes, schema version, codec keys")
    dr.add_argument("--require-encryption", action="store_true", help="fail when no payload keys are configured")
    return p


def run_db(args: argparse.Namespace) -> None:
    """`kefu db ...`: Alembic migrations of the archive (archive/migrate.py); production's only way to change the
    schema. `upgrade` first adopts tables created without migrations (an older kefu's create_all), so it is
    idempotent on any archive kefu created."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from archive import migrate

    try:
        if args.action == "upgrade":
            rev = migrate.upgrade(revision=args.revision or "head")
            emit({"current": rev, "head": migrate.head()}, args.json, lambda d: f"{d['current']} (head {d['head']})")
        elif args.action == "downgrade":
            if not args.revision:
                raise CliError("downgrade: give the target revision (e.g. -1, or base to remove every table)")
            rev = migrate.downgrade(args.revision)
            emit({"current": rev, "head": migrate.head()}, args.json,
                 lambda d: f"{d['current'] or 'none'} (head {d['head']})")
        elif args.action == "current":
            emit({"current": migrate.current(), "head": migrate.head()}, args.json,
                 lambda d: f"{d['current'] or 'none'} (head {d['head']})")
        else:
            emit(migrate.history(), args.json, "\n".join)
    except migrate.SchemaError as exc:
        raise CliError(f"{exc}; nothing was changed") from exc
    except CommandError as exc:
        raise CliError(str(exc).splitlines()[0]) from exc
    except SQLAlchemyError as exc:
        raise CliError(f"database: {str(exc).splitlines()[0]}") from exc


def run_audit(args: argparse.Namespace) -> int:
    """`kefu audit verify ID|--all`: every row changed, removed or inserted out of order, one line each naming its
    request (or incident) and seq; 0 when every chain holds, 2 otherwise (002 §2.4.3). --json adds each chain's
    head hash, to record outside the archive (docs/security.md#audit-trail)."""
    from sqlalchemy.exc import SQLAlchemyError

    from archive.audit_chain import verify_chain
    from archive.store import Archive

    if bool(args.id) == args.all:
        raise CliError("give a request or incident ID, or --all")
    store = Archive()
    try:
        chains = [verify_chain(*chain) for chain in store.audit_chains(args.id)]
    except SQLAlchemyError as exc:
        raise CliError(f"database: {str(exc).splitlines()[0]}") from exc
    finally:
        store.close()
    if args.id and not chains:
        raise CliError(f"ID: no audit trail of a request or incident {args.id} in the archive")
    problems = [problem for chain in chains for problem in chain.problems]
    report = {"ok": not problems, "chains": [c.as_json() for c in chains], "problems": [p.as_json() for p in problems]}
    lines, superseded = sum(c.lines for c in chains), sum(c.superseded for c in chains)
    summary = (f"{len(problems)} problem(s) in {sum(bool(c.problems) for c in chains)} of {len(chains)} chain(s)"
               if problems else f"{len(chains)} chain(s) hold") + f": {lines} line(s), {superseded} superseded"
    emit(report, args.json, lambda _: "\n".join([*map(str, problems), summary]))
    return 2 if problems else 0


def run_doctor(args: argparse.Namespace) -> int:
    from cli import doctor

    checks = asyncio.run(doctor.run_checks(require_encryption=args.require_encryption))
    emit([c._asdict() for c in checks], args.json, lambda _: doctor.render(checks))
    return 0 if doctor.healthy(checks) else 2


def prepare(args: argparse.Namespace) -> Any:
    """What the command sends, validated before any connection: a bad input gets its own error whatever the
    server's state (and nothing is started or signalled)."""
    if args.command == "submit":
        return build_intake(args)
    if args.command == "act":
        return build_act(args)
    if args.command == "confirm":
        return parse(Confirm, {"accepted": not args.reject, "comment": args.comment})
    if args.command == "survey":
        return parse(SurveyAnswer, {"score": args.score, "nps": args.nps, "resolved": not args.unresolved,
                                    "comment": args.comment})
    if args.command in ("escalate", "escalate-bulk"):
        return escalate_request(args.actor, args.role, args.reason, args.to_level)
    if args.command == "incident":
        return incident_cli.prepare(args)
    return None


async def run_temporal(args: argparse.Namespace) -> None:
    payload = prepare(args)
    rows: list[dict[str, Any]] = []
    if args.command == "escalate-bulk":  # archive and confirmation first: no server needed to say "no match"
        rows = [r for r in list_rows(args) if r["stage"] != "completed"]
        if not rows:
            emit({"matched": 0, "escalated": 0, "results": []}, args.json, lambda _: "no open requests match")
            return
        if not confirm_bulk(rows, args):
            raise CliError("cancelled: nothing escalated")
    client = await connect()
    if args.command == "incident":
        await incident_cli.run(args, client, payload)
        return
    if args.command == "submit":
        _, result = await submit(client, payload, wait_for_ticket=not args.no_wait)
        emit(result.model_dump(mode="json") if result else {"workflow_id": workflow_id_for(payload.request_id)},
             args.json, status_text if result else None)
        return
    if args.command == "escalate-bulk":
        results = await bulk_escalate(client, rows, args.actor, args.reason, role=args.role, to_level=args.to_level,
                                      on_progress=progress_reporter(wants_progress(args), "escalating"))
        summary = {"matched": len(results), "escalated": sum(r["ok"] for r in results), "results": results}
        emit(summary, args.json, bulk_text)
        if summary["escalated"] < summary["matched"]:
            raise CliError(f"{summary['matched'] - summary['escalated']} of {summary['matched']} signals failed")
        return
    handle = client.get_workflow_handle(workflow_id_for(args.request_id))
    if args.command == "status":
        emit(await handle.query(ServiceRequestWorkflow.status), args.json, status_text)
    elif args.command in ("act", "confirm", "survey"):
        emit(await update(handle, args.command, payload), args.json, status_text)
    elif args.command == "escalate":  # update `escalation`: a refusal is a one-line error and exit 2
        emit(await update(handle, "escalation", payload), args.json, status_text)


def run_local(args: argparse.Namespace) -> None:
    if args.command == "list":
        rows = list_rows(args)
        emit(rows, args.json, table_text)
    elif args.command == "show":
        from archive.store import Archive

        store = Archive()
        row = store.get(args.request_id)
        if row is None:
            raise CliError(f"request_id: no request {args.request_id} in the archive")
        trail = store.audit_trail(args.request_id)
        emit({"request": row, "audit": trail}, args.json,
             lambda d: table_text([d["request"]]) + "\n\naudit trail:\n" + "\n".join(
                 f"{e['seq']:>3} {e['at']} {e['actor_role']}:{e['actor_id']} {e['action']}"
                 f"{' REJECTED' if e['rejected'] else ''} {json.dumps(e['detail'], ensure_ascii=False)}"
                 for e in d["audit"]))
    elif args.command == "report":
        run_report(args)
    elif args.command == "schema":
        emit(schemas(), True)
    elif args.command == "sla":
        from cli.sla_explain import explain, render_text

        try:
            start = TypeAdapter(datetime).validate_python(args.start) if args.start else datetime.now(UTC)
        except ValidationError as exc:
            raise CliError(f"--start: {validation_message(exc)}") from exc
        if start.tzinfo is None:
            raise CliError("--start: give a time zone offset, e.g. 2026-09-30T17:00+08:00")
        pack = get_pack(args.policy)
        if args.service_class not in pack.classes:
            raise CliError(f"service_class: {args.service_class!r} is not a class of {pack.id} "
                           f"({', '.join(pack.classes)})")
        emit(explain(pack, args.service_class, start), args.json, render_text)
    elif args.command == "policy":
        run_policy(args)


def run_policy(args: argparse.Namespace) -> None:
    if args.action == "list":
        packs = load_all()
        emit([{"id": p.id, "version": p.version, "manual": p.manual, "title": p.title,
               "classes": list(p.classes)} for p in packs.values()], args.json,
             lambda rows: "\n".join(f"{r['id']:<16} v{r['version']}  manual {r['manual']}  {r['title']}" for r in rows))
        return
    if not args.target:
        raise CliError(f"policy {args.action}: give a {'policy id' if args.action == 'show' else 'file'}")
    if args.action == "show":
        emit(get_pack(args.target).model_dump(mode="json"), True)
        return
    pack, problems = check_pack(args.target)
    if pack is None:  # every problem, one line each (file:line for YAML syntax); --json: the same as a list
        if args.json:
            emit([p.as_json() for p in problems], True)
        else:
            print("\n".join(map(str, problems)), file=sys.stderr)
        raise Reported(len(problems))
    emit({"ok": True, "id": pack.id, "version": pack.version}, args.json,
         lambda d: f"{args.target}: ok ({d['id']} v{d['version']})")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "doctor":
            return run_doctor(args)
        if args.command == "audit":
            return run_audit(args)
        if args.command == "db":
            run_db(args)
        elif args.command == "agent":
            agents_cli.run(args)
        elif args.command == "incident" and args.incident_action == "list":
            asyncio.run(incident_cli.run(args, None))  # type: ignore[arg-type]  # the archive only
        elif args.command in ("list", "show", "schema", "sla", "policy", "report"):
            run_local(args)
        elif args.command in ("token", "login"):
            tokens_cli.run(args)
        elif args.command == "serve":
            asyncio.run(serve_cli.run(args))
        else:
            with tokens_cli.acting(args):  # the token's principal, if any, signs what the command sends
                asyncio.run(run_temporal(args))
    except Reported:
        return 2
    except (CliError, PolicyError, ApiError) as exc:
        print(f"kefu {args.command}: {exc}", file=sys.stderr)
        return 2
    except RPCError as exc:
        print(f"kefu {args.command}: {exc.message.splitlines()[0] if exc.message else exc}", file=sys.stderr)
        return 2
    return 0


def cli() -> None:
    """The `kefu` console script. Exits with os._exit once output is flushed: the Temporal client's native threads
    can otherwise crash the interpreter at shutdown (temporalio/sdk-python#300)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
