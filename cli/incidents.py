"""`kefu incident …`: incidents (突发事件, SEEDS §11) from the command line.

    kefu incident declare --incident-id ID --level 1-4 --title T --lead L --actor A [--request-id R …]
    kefu incident link ID --actor A --request-id R [--request-id R …]
    kefu incident update ID --actor A --text T [--level N]      progress (the lead, or a supervisor); N regrades
    kefu incident resolve ID --actor A --summary S --root-cause C
    kefu incident review ID --actor A --findings F [--action X …]
    kefu incident show ID                                        the workflow's `status` query
    kefu incident list [--stage open|resolved|reviewed]          from the archive
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.declare import check_policy, declare_incident
from cli.common import CliError, emit, parse, run_update
from models.incident import MAX_LINK, Declare, IncidentStatus, Link, Progress, Resolve, Review, incident_workflow_id
from workflows.incident import IncidentWorkflow

ACTIONS = ("declare", "link", "update", "resolve", "review", "show", "list")


def status_text(st: dict[str, Any]) -> str:
    lines = [f"{st['incident_id']}  level {st['level']}  {st['stage']}{'  (auto)' if st['auto'] else ''}  "
             f"policy {st['policy']}",
             f"{st['title']}",
             f"lead {st['lead']}  linked {st['linked']}  updates {st['updates']}  "
             f"broadcast pending {st['broadcast_pending']}",
             f"declared {st['declared_at']}  resolved {st['resolved_at'] or '—'}  reviewed {st['reviewed_at'] or '—'}"
             + (f"  review due {st['review_due']}" if st["review_due"] and not st["reviewed_at"] else "")]
    if st["summary"]:
        lines.append(f"summary: {st['summary']}  root cause: {st['root_cause']}")
    return "\n".join(lines)


def list_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no incidents match"
    return "\n".join(f"{r['incident_id']:<28} L{r['level']} {r['stage']:<9} linked {r['linked']:<5} "
                     f"lead {r['lead']:<16} {r['title'][:40]}" for r in rows)


def add_parser(cmd: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = cmd("incident", "incidents (突发事件): declare, link, update, resolve, review, show, list")
    sub = p.add_subparsers(dest="incident_action", required=True)

    def action(name: str, help_text: str, with_id: bool = True, role: str | None = "supervisor"
               ) -> argparse.ArgumentParser:
        a = sub.add_parser(name, help=help_text)
        # `kefu incident show X --json` as well as `kefu incident --json show X`
        a.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
        if with_id:
            a.add_argument("incident_id")
        if role:
            a.add_argument("--actor", help="default: the token's subject (required without a token)")
            a.add_argument("--role", help=f"default: the token's role, else {role}")
        return a

    d = action("declare", "declare an incident (supervisor and above)", with_id=False)
    d.add_argument("--incident-id", required=True)
    d.add_argument("--policy", default="finance")
    d.add_argument("--level", type=int, required=True, help="1 一级 major … 4 四级 minor")
    d.add_argument("--title", required=True)
    d.add_argument("--description", default="")
    d.add_argument("--category")
    d.add_argument("--lead", required=True, help="named lead of the response plan")
    d.add_argument("--request-id", action="append", default=[], dest="request_ids", help="repeatable")

    lk = action("link", "link requests to the incident")
    lk.add_argument("--request-id", action="append", required=True, dest="request_ids", help="repeatable")

    u = action("update", "post progress (the lead, or a supervisor); --level regrades")
    u.add_argument("--text", required=True)
    u.add_argument("--level", type=int)

    r = action("resolve", "resolve the incident: every linked request is resolved with its summary")
    r.add_argument("--summary", required=True)
    r.add_argument("--root-cause", required=True)

    rv = action("review", "the post-mortem (复盘); linked requests may close afterwards")
    rv.add_argument("--findings", required=True)
    rv.add_argument("--action", action="append", default=[], dest="actions", help="follow-up action, repeatable")

    action("show", "the incident's state and linked count", role=None)
    ls = action("list", "incidents from the archive", with_id=False, role=None)
    ls.add_argument("--stage", choices=["open", "resolved", "reviewed"])
    ls.add_argument("--limit", type=int, default=200)


async def _update(handle: WorkflowHandle, name: str, payload: BaseModel) -> IncidentStatus:
    return await run_update(handle, name, payload, IncidentStatus)


def prepare(args: argparse.Namespace) -> list[BaseModel]:
    """The payloads of an incident command, validated (and a declaration's policy checked) before any connection."""
    what = args.incident_action
    actor = {"id": args.actor, "role": args.role} if hasattr(args, "actor") else None
    if what == "declare":
        declare = parse(Declare, {
            "incident_id": args.incident_id, "policy": args.policy, "level": args.level, "title": args.title,
            "description": args.description, "category": args.category, "lead": args.lead,
            "declared_by": actor, "request_ids": args.request_ids})
        check_policy(declare)
        return [declare]
    if what == "link":
        ids = list(dict.fromkeys(args.request_ids))
        return [parse(Link, {"actor": actor, "request_ids": ids[i:i + MAX_LINK]}) for i in range(0, len(ids), MAX_LINK)]
    if what == "update":
        return [parse(Progress, {"actor": actor, "text": args.text, "level": args.level})]
    if what == "resolve":
        return [parse(Resolve, {"actor": actor, "summary": args.summary, "root_cause": args.root_cause})]
    if what == "review":
        return [parse(Review, {"actor": actor, "findings": args.findings, "actions": args.actions})]
    return []  # show, list: nothing to send


async def run(args: argparse.Namespace, client: Client, payloads: list[BaseModel] | None = None) -> None:
    """payloads: prepare(args)'s, when the caller validated before connecting."""
    as_json = bool(getattr(args, "json", False))
    what = args.incident_action
    if what == "list":
        from archive.incidents import list_incidents  # the archive loads only for the command that reads it
        from archive.store import Archive

        emit(list_incidents(Archive(), stage=args.stage, limit=args.limit), as_json, list_text)
        return
    payloads = prepare(args) if payloads is None else payloads
    if what == "declare":
        declare: Declare = payloads[0]  # type: ignore[assignment]
        handle = await declare_incident(client, declare)
        emit(await _status(handle, declare.incident_id), as_json, status_text)
        return
    handle = client.get_workflow_handle(incident_workflow_id(args.incident_id))
    if what == "show":
        emit(await _status(handle, args.incident_id), as_json, status_text)
        return
    try:
        for payload in payloads:
            status = await _update(handle, what, payload)
    except RPCError as exc:
        raise _not_found(exc, args.incident_id) from exc
    emit(status, as_json, status_text)


async def _status(handle: WorkflowHandle, incident_id: str) -> IncidentStatus:
    try:
        return await handle.query(IncidentWorkflow.status)
    except RPCError as exc:
        raise _not_found(exc, incident_id) from exc


def _not_found(exc: RPCError, incident_id: str) -> Exception:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return CliError(f"incident_id: no incident {incident_id}")
    return exc
