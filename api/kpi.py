"""The KPI report of a period (SEEDS §9; docs/reports.md): what `kefu report` and `GET /reports/kpi` share.

`period` reads the period's bounds; `figures` reads the archive rows accepted in it (and the breach events of the
breached ones) and hands them to the pure reports/kpi.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from api.errors import BAD_INPUT, ApiError
from archive.store import Archive
from policies.loader import PolicyError, get_pack
from reports import kpi


def period(date_from: str, date_to: str, fields: tuple[str, str] = ("from", "to")) -> tuple[datetime, datetime]:
    """The bounds as dates (whole days in Asia/Shanghai, the end inclusive) or ISO times with an offset; `fields`
    names them in errors (`--from`/`--to` on the command line)."""

    def parse(value: str, field: str, inclusive_end: bool) -> datetime:
        try:
            if len(value) == 10:
                day = datetime.fromisoformat(value).replace(tzinfo=kpi.REPORT_TZ)
                return day + timedelta(days=1) if inclusive_end else day
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ApiError(BAD_INPUT, field, f"{value!r} is not a date (YYYY-MM-DD) or an ISO time") from exc
        if moment.tzinfo is None:
            raise ApiError(BAD_INPUT, field, "give a time zone offset, e.g. 2026-09-30T17:00+08:00, or a plain date")
        return moment

    start, end = parse(date_from, fields[0], False), parse(date_to, fields[1], True)
    if end <= start:
        raise ApiError(BAD_INPUT, fields[1], "the period ends before it starts")
    return start, end


def figures(store: Archive, start: datetime, end: datetime, label: tuple[str, str], policy_id: str | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The report's figures; on_progress(done, total) while the breached requests' events are read."""
    if policy_id:
        get_pack(policy_id)  # unknown policy: one-line error
    rows = store.rows_between(start, end, policy_id=policy_id)
    thresholds: dict[str, int] = {}
    for pid in {r["policy_id"] for r in rows}:
        try:
            thresholds[pid] = get_pack(pid).revisit.reopen_below
        except PolicyError:
            thresholds[pid] = kpi.DEFAULT_CSAT_THRESHOLD
    breached = [r for r in rows if r.get("breached_clocks")]
    breaches: list[dict[str, Any]] = []
    for i, row in enumerate(breached, 1):
        breaches += [{"request_id": e["request_id"], "clock": e["detail"].get("clock"), "at": e["at"]}
                     for e in store.audit_trail(row["request_id"]) if e["action"] == "sla_breach"]
        if on_progress:
            on_progress(i, len(breached))
    return kpi.compute(rows, datetime.now(UTC), start=start, end=end, label=label, policy_id=policy_id,
                       csat_thresholds=thresholds, breaches=breaches)
