"""`kefu doctor`: is this deployment healthy? One line per check, exit 0 when all pass, 2 otherwise.

Checks, in order (each returns (name, ok, one-line message)):

    temporal           the frontend at TEMPORAL_ADDRESS answers (TLS from TEMPORAL_TLS_*)
    namespace          TEMPORAL_NAMESPACE exists and is registered
    search-attributes  every attribute of infra/search.py is registered with its type
    database           DATABASE_URL is reachable and its schema is at the newest migration (kefu db upgrade)
    codec              the payload keys (KEFU_CODEC_KEYS / KEFU_CODEC_KEY_FILE) load and round-trip
    calendars          the packs load, and no calendar's official schedules end within 60 days (a warning: later
                       deadlines are provisional until next year's schedule is loaded, docs/policies.md#calendars)

Encryption off is reported as ok unless `--require-encryption` (production) is given. A warning (WARN) leaves the
deployment healthy: exit 0.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import NamedTuple

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from cli.common import connection_problem
from infra import search, temporal_env

CONNECT_TIMEOUT = 10.0


class Check(NamedTuple):
    name: str
    ok: bool
    message: str
    warn: bool = False  # ok, but someone should act before it stops being ok


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


async def check_temporal(address: str | None = None) -> tuple[Check, Client | None]:
    address = address or temporal_env.temporal_address()
    try:
        client = await asyncio.wait_for(temporal_env.connect(address), CONNECT_TIMEOUT)
    except Exception as exc:  # any failure is a one-line diagnosis, in plain words (never cut mid-word)
        problem, hint = connection_problem(exc, CONNECT_TIMEOUT)
        return Check("temporal", False, f"cannot connect to {address}: {problem}; {hint}"), None
    return Check("temporal", True, f"connected to {address}"), client


async def check_namespace(client: Client | None) -> Check:
    name = temporal_env.namespace()
    if client is None:
        return Check("namespace", False, f"{name}: not checked, no Temporal connection")
    try:
        described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Check("namespace", False, f"{name}: not found (create it: temporal operator namespace create "
                                             f"--namespace {name})")
        return Check("namespace", False, f"{name}: {_first_line(exc)}")
    state = described.namespace_info.state  # 1 registered, 2 deprecated, 3 deleted
    if state not in (0, 1):
        return Check("namespace", False, f"{name}: state {state} (deprecated or deleted)")
    return Check("namespace", True, f"{name} registered")


async def check_search_attributes(client: Client | None) -> Check:
    if client is None:
        return Check("search-attributes", False, "not checked, no Temporal connection")
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=temporal_env.namespace()))
    except RPCError as exc:
        return Check("search-attributes", False, f"cannot list: {_first_line(exc)}")
    have = dict(listed.custom_attributes)
    missing = [key.name for key in search.ALL if key.name not in have]
    wrong = [f"{key.name} is {IndexedValueType.Name(have[key.name])}" for key in search.ALL
             if key.name in have and int(have[key.name]) != int(key.indexed_value_type)]
    if missing or wrong:
        parts = ([f"missing {', '.join(missing)} (register them: the compose service search-attributes, or "
                  f"`temporal operator search-attribute create`)"] if missing else []) + wrong
        return Check("search-attributes", False, "; ".join(parts))
    return Check("search-attributes", True, f"all {len(search.ALL)} registered")


def check_database(url: str | None = None) -> Check:
    from archive import migrate
    from archive.store import database_url

    shown = database_url(url).render_as_string(hide_password=True)
    try:
        current = migrate.current(url)
        head = migrate.head()
    except Exception as exc:
        return Check("database", False, f"{shown}: {_first_line(exc)}")
    if current is None:
        return Check("database", False, f"{shown}: no schema version (run `kefu db upgrade`)")
    if current != head:
        return Check("database", False, f"{shown}: schema at {current}, code expects {head} (run `kefu db upgrade`)")
    return Check("database", True, f"{shown}: schema at head {head}")


def check_codec(require_encryption: bool = False) -> Check:
    from temporalio.api.common.v1 import Payload

    from infra.codec import codec_from_env

    try:
        codec = codec_from_env()
    except Exception as exc:  # unreadable file, bad base64, wrong length
        return Check("codec", False, f"payload keys unusable: {_first_line(exc)}")
    if codec is None:
        message = "encryption off: no KEFU_CODEC_KEYS or KEFU_CODEC_KEY_FILE"
        return Check("codec", not require_encryption, message + (" (required)" if require_encryption else ""))
    probe = Payload(metadata={"encoding": b"json/plain"}, data=b'"doctor"')
    if codec.decrypt(codec.encrypt(probe)) != probe:
        return Check("codec", False, "keys load but a payload does not round-trip")
    return Check("codec", True, f"encrypting with {codec.encrypt_key_id} ({len(codec.key_ids)} key(s) configured)")


def check_calendars(now: datetime | None = None) -> Check:
    """Issue 16: warn COVERAGE_WARN_DAYS before a calendar's official schedules (holidays, 调休) run out."""
    from policies.loader import PolicyError, coverage_warnings, load_all

    try:
        packs = load_all()
    except PolicyError as exc:
        return Check("calendars", False, f"policy packs do not load: {exc}")
    warnings = coverage_warnings(packs, now or datetime.now(UTC))
    if warnings:
        return Check("calendars", True, "; ".join(warnings), warn=True)
    covered = sorted({f"{p.calendar.key} until {p.calendar.covers.last}" for p in packs.values()
                      if p.calendar.covers is not None})
    return Check("calendars", True, f"official schedules known: {', '.join(covered) or 'no calendar in use'}")


async def run_checks(address: str | None = None, database: str | None = None,
                     require_encryption: bool = False) -> list[Check]:
    temporal, client = await check_temporal(address)
    return [temporal, await check_namespace(client), await check_search_attributes(client),
            await asyncio.to_thread(check_database, database), check_codec(require_encryption), check_calendars()]


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'WARN' if c.warn else 'ok  ' if c.ok else 'FAIL'} {c.name:<{width}}  {c.message}"
                     for c in checks)


def healthy(checks: list[Check]) -> bool:
    return all(c.ok for c in checks)
