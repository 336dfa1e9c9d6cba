"""`kefu agent`: the agent directory that automatic assignment draws on (001 §4.1, 003 §1.1, 003 §2.2).

    kefu agent import FILE                   YAML or JSON list of agents; all valid or nothing is written
    kefu agent add --id ID --name N --team T --capacity C [--department --role --region --level
                   --types t1,t2 --categories … --languages … --channels …]
    kefu agent list [--team T]               id, team, department, load/capacity, on shift now, active
    kefu agent remove ID                     deactivate: no new cases; held cases and history stay

cli/main.py wires it: `agents_cli.add_parser(cmd)` in parser(), and `agents_cli.run(args)` for command "agent".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from archive.directory import Directory
from archive.store import Archive
from cli.common import CliError, emit, parse, read_text, validation_message
from domain.assignment import on_shift
from models.assignment import Agent, Shift
from policies.loader import yaml_problem

AGENT_LIST = TypeAdapter(list[Agent])
SKILL_FLAGS = {"types": "request_types", "categories": "categories", "languages": "languages",
               "channels": "channels"}


def add_parser(cmd: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add `kefu agent` to the kefu parser; cmd(name, help) returns a subparser that already has --json."""
    p = cmd("agent", "the agent directory: import, add, list, remove")
    actions = p.add_subparsers(dest="agent_action", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_text)
        # --json after the action as well; SUPPRESS keeps `kefu agent --json list` working too.
        a.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
        return a

    imp = action("import", "add or update agents from a YAML or JSON list (all valid, or nothing is written)")
    imp.add_argument("file")

    add = action("add", "add or update one agent")
    add.add_argument("--id", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--team", required=True)
    add.add_argument("--capacity", required=True, type=int, help="open cases held at once")
    add.add_argument("--department")
    add.add_argument("--role")
    add.add_argument("--region", help="region or branch (001 §4.1 就近)")
    add.add_argument("--level", type=int, help="1-5, higher is more capable (001 §4.1 最能)")
    for flag, field in SKILL_FLAGS.items():
        add.add_argument(f"--{flag}", metavar="A,B", help=f"skills.{field}, comma-separated (default any)")

    ls = action("list", "the directory with each agent's load")
    ls.add_argument("--team")

    rm = action("remove", "deactivate an agent (history stays)")
    rm.add_argument("agent_id")


def run(args: argparse.Namespace) -> None:
    if args.agent_action == "import":
        agents = read_agents(args.file)
        with directory() as d:
            count = d.upsert_agents(agents)
        emit({"imported": count}, args.json, lambda r: f"{r['imported']} agents imported")
    elif args.agent_action == "add":
        agent = agent_from_flags(args)
        with directory() as d:
            d.upsert_agents([agent])
            row = d.get_agent(agent.id)
        emit(with_shift([row])[0], args.json, lambda r: table_text([r]))
    elif args.agent_action == "list":
        with directory() as d:
            rows = d.list_agents(args.team)
        emit(with_shift(rows), args.json, table_text)
    else:
        with directory() as d:
            if d.get_agent(args.agent_id) is None:
                raise CliError(f"agent_id: no agent {args.agent_id} in the directory")
            changed = d.deactivate(args.agent_id)
        emit({"id": args.agent_id, "active": False, "changed": changed}, args.json,
             lambda r: f"{r['id']} deactivated" if r["changed"] else f"{r['id']} was already inactive")


@contextmanager
def directory() -> Iterator[Directory]:
    """The directory in the archive at DATABASE_URL; database errors become one line."""
    archive = Archive()
    try:
        yield Directory(archive.engine)
    except SQLAlchemyError as exc:
        first = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        raise CliError(f"database: {first} (is the schema current? `kefu db upgrade`)") from exc
    finally:
        archive.close()


def read_agents(path: str) -> list[Agent]:
    """Every agent of the file, validated before anything is written; one-line error naming the entry and field."""
    text = read_text(path)
    try:
        raw = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise CliError(str(yaml_problem(path, exc, what="YAML or JSON"))) from exc
    if isinstance(raw, dict) and "agents" in raw:
        raw = raw["agents"]
    if not isinstance(raw, list):
        raise CliError(f"{path}: expected a list of agents")
    try:
        agents = AGENT_LIST.validate_python(raw)
    except ValidationError as exc:
        raise CliError(f"{path}: agents.{validation_message(exc)}") from exc
    seen: set[str] = set()
    for index, agent in enumerate(agents):
        if agent.id in seen:
            raise CliError(f"{path}: agents.{index}.id: {agent.id} appears twice")
        seen.add(agent.id)
    return agents


def agent_from_flags(args: argparse.Namespace) -> Agent:
    raw: dict[str, Any] = {"id": args.id, "name": args.name, "team": args.team, "capacity": args.capacity}
    raw.update({key: getattr(args, key) for key in ("department", "role", "region", "level")
                if getattr(args, key) is not None})
    raw["skills"] = {field: [v.strip() for v in getattr(args, flag).split(",") if v.strip()]
                     for flag, field in SKILL_FLAGS.items() if getattr(args, flag)}
    return parse(Agent, raw)


def with_shift(rows: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Rows with `on_shift`: whether each agent's shift covers now."""
    now = datetime.now(UTC)
    return [row | {"on_shift": on_shift(Shift.model_validate(row["shift"]), now)} for row in rows if row]


def table_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no agents"
    lines = [f"{'id':<16} {'team':<14} {'department':<18} {'load':>9} {'on shift':<8} active"]
    for r in rows:
        load = f"{r['open_cases']}/{r['capacity']}"
        lines.append(f"{r['id']:<16} {r['team']:<14} {r['department']:<18} {load:>9} "
                     f"{'yes' if r['on_shift'] else 'no':<8} "
                     f"{'yes' if r['active'] else 'no'}")
    return "\n".join(lines)
