"""The KPIs the manuals name (SEEDS §9), computed from archive projection rows. Pure: no I/O, no clock.

compute(rows, now) takes the `requests` projection rows (dicts as Archive.rows_between returns them) and returns
one JSON-ready dict; the text table, the HTML page and `--json` all read that dict. Durations are in seconds,
rates are fractions 0..1 (None when nothing counts toward them), NPS is in points (-100..100).

Denominators, so every figure can be checked by hand:
- first-response time: requests with first_response_at; resolution time: requests with resolved_at
  (both measured from accepted_at, in wall-clock time).
- SLA compliance per clock: requests whose clock is settled (breached, or its milestone reached: first
  response, resolution, closure, completion for revisit); compliance = settled and not breached / settled.
  "all clocks" is the share of all requests with no breached clock (service conformity, 003 §7.1).
- first-contact resolution: share of resolved requests resolved at first contact.
- reopen rate: share of closed requests reopened at least once (二次服务, 003 §4.1).
- escalation rate: share of all requests with escalation_level > 0; complaint rate: share with type complaint.
- CSAT: share of surveyed requests whose satisfaction is at least the pack's revisit.reopen_below (85 default,
  002 §4.1). NPS: promoters (9-10) minus detractors (0-6), in % of those who gave an NPS answer.
- backlog: requests not completed, by stage; age = now - accepted_at.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

REPORT_TZ = ZoneInfo("Asia/Shanghai")  # where the center works: days, hours and weekdays are local
DEFAULT_CSAT_THRESHOLD = 85  # 002 §4.1 CSAT target ≥ 85 %
CLOCKS: tuple[str, ...] = ("first_response", "handling", "closure", "revisit")
CLOCK_MILESTONE = {"first_response": "first_response_at", "handling": "resolved_at", "closure": "closed_at",
                   "revisit": "completed_at"}
STAGES: tuple[str, ...] = ("received", "accepted", "classified", "handling", "resolved", "closed", "revisit",
                           "completed")
AGE_BUCKETS: tuple[tuple[str, float], ...] = (("< 1 d", 1), ("1–3 d", 3), ("3–7 d", 7), ("≥ 7 d", math.inf))
WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _clocks(row: Mapping[str, Any]) -> list[str]:
    value = row.get("breached_clocks") or []
    return list(json.loads(value) if isinstance(value, str) else value)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), q in 0..100."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def durations(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "mean": sum(values) / len(values) if values else None,
            "p50": percentile(values, 50), "p90": percentile(values, 90)}


def compute(rows: Iterable[Mapping[str, Any]], now: datetime, *, start: datetime | None = None,
            end: datetime | None = None, label: tuple[str, str] | None = None, policy_id: str | None = None,
            csat_thresholds: Mapping[str, int] | None = None,
            breaches: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The KPI dict. csat_thresholds: policy id -> satisfaction that counts as satisfied (default 85).
    breaches: sla_breach audit events ({request_id, clock, at}) for the heatmap; without them a breach is
    placed at its request's acceptance time. label: the period as the reader gave it, e.g. two dates (end
    inclusive), for headings; default the ISO times of start and end."""
    rows = [dict(r) for r in rows]
    thresholds = dict(csat_thresholds or {})
    total = len(rows)

    def count(key: str) -> dict[str, int]:
        return dict(sorted(Counter(str(r.get(key) or "—") for r in rows).items(), key=lambda kv: (-kv[1], kv[0])))

    accepted = {r["request_id"]: _time(r["accepted_at"]) for r in rows}
    first_response = [(_time(r["first_response_at"]) - accepted[r["request_id"]]).total_seconds()  # type: ignore[operator]
                      for r in rows if r.get("first_response_at")]
    resolution = [(_time(r["resolved_at"]) - accepted[r["request_id"]]).total_seconds()  # type: ignore[operator]
                  for r in rows if r.get("resolved_at")]

    sla: dict[str, dict[str, Any]] = {}
    for clock in CLOCKS:
        breached = sum(1 for r in rows if clock in _clocks(r))
        settled = sum(1 for r in rows if clock in _clocks(r) or r.get(CLOCK_MILESTONE[clock]))
        sla[clock] = {"settled": settled, "breached": breached, "met": settled - breached,
                      "compliance": _rate(settled - breached, settled)}
    clean = sum(1 for r in rows if not _clocks(r))
    sla["all"] = {"settled": total, "breached": total - clean, "met": clean, "compliance": _rate(clean, total)}

    resolved = [r for r in rows if r.get("resolved_at")]
    closed = [r for r in rows if r.get("closed_at")]
    surveyed = [r for r in rows if r.get("satisfaction") is not None]
    satisfied = [r for r in surveyed
                 if r["satisfaction"] >= thresholds.get(r.get("policy_id") or "", DEFAULT_CSAT_THRESHOLD)]
    nps_answers = [int(r["nps"]) for r in rows if r.get("nps") is not None]
    promoters = sum(1 for n in nps_answers if n >= 9)
    detractors = sum(1 for n in nps_answers if n <= 6)

    # backlog and aging: what is still open now
    open_rows = [r for r in rows if r.get("stage") != "completed"]
    backlog: dict[str, dict[str, Any]] = {}
    for stage in [*STAGES, *sorted({r["stage"] for r in open_rows} - set(STAGES))]:
        ages = [(now - accepted[r["request_id"]]).total_seconds() for r in open_rows  # type: ignore[operator]
                if r["stage"] == stage]
        if stage == "completed" or (not ages and stage not in STAGES):
            continue
        buckets = dict.fromkeys((name for name, _ in AGE_BUCKETS), 0)
        for age in ages:
            days = age / 86400
            buckets[next(name for name, limit in AGE_BUCKETS if days < limit)] += 1
        backlog[stage] = {"count": len(ages), "mean_age": sum(ages) / len(ages) if ages else None,
                          "max_age": max(ages) if ages else None, "buckets": buckets}

    # daily trend (local days), from start to end when given so quiet days show as zero
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # day -> [volume, without breach]
    for r in rows:
        day = accepted[r["request_id"]].astimezone(REPORT_TZ).date().isoformat()  # type: ignore[union-attr]
        per_day[day][0] += 1
        per_day[day][1] += 0 if _clocks(r) else 1
    days = sorted(per_day)
    if days:
        first = datetime.fromisoformat(days[0]).date()
        last = datetime.fromisoformat(days[-1]).date()
        for d in range((last - first).days + 1):
            per_day.setdefault((first + timedelta(days=d)).isoformat(), [0, 0])
    trend = [{"day": day, "volume": v, "compliant": c, "compliance": _rate(c, v)}
             for day, (v, c) in sorted(per_day.items())]

    # breach heatmap: weekday x hour in Asia/Shanghai
    heat = [[0] * 24 for _ in WEEKDAYS]
    ids = set(accepted)
    if breaches is not None:
        moments = [_time(b["at"]) for b in breaches if b.get("request_id") in ids]
    else:
        moments = [accepted[r["request_id"]] for r in rows for _ in _clocks(r)]
    for moment in moments:
        local = moment.astimezone(REPORT_TZ)  # type: ignore[union-attr]
        heat[local.weekday()][local.hour] += 1

    return {
        "period": {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
                   "label": list(label) if label else [start.isoformat() if start else "…",
                                                       end.isoformat() if end else "…"],
                   "policy": policy_id, "generated_at": now.isoformat(), "timezone": str(REPORT_TZ)},
        "volume": {"total": total, "by_channel": count("channel"), "by_type": count("request_type"),
                   "by_priority": count("priority"), "by_policy": count("policy_id")},
        "first_response_time": durations(first_response),
        "resolution_time": durations(resolution),
        "sla": sla,
        "first_contact_resolution": {"n": len(resolved), "count": sum(1 for r in resolved
                                                                     if r.get("first_contact_resolution")),
                                     "rate": _rate(sum(1 for r in resolved if r.get("first_contact_resolution")),
                                                   len(resolved))},
        "reopen": {"n": len(closed), "count": sum(1 for r in closed if (r.get("reopen_count") or 0) > 0),
                   "rate": _rate(sum(1 for r in closed if (r.get("reopen_count") or 0) > 0), len(closed))},
        "escalation": {"n": total, "count": sum(1 for r in rows if (r.get("escalation_level") or 0) > 0),
                       "rate": _rate(sum(1 for r in rows if (r.get("escalation_level") or 0) > 0), total)},
        "complaint": {"n": total, "count": sum(1 for r in rows if r.get("request_type") == "complaint"),
                      "rate": _rate(sum(1 for r in rows if r.get("request_type") == "complaint"), total)},
        "csat": {"n": len(surveyed), "satisfied": len(satisfied), "rate": _rate(len(satisfied), len(surveyed)),
                 "mean_score": sum(r["satisfaction"] for r in surveyed) / len(surveyed) if surveyed else None,
                 "thresholds": thresholds, "default_threshold": DEFAULT_CSAT_THRESHOLD},
        "nps": {"n": len(nps_answers), "promoters": promoters, "detractors": detractors,
                "passives": len(nps_answers) - promoters - detractors,
                "score": (promoters - detractors) * 100 / len(nps_answers) if nps_answers else None},
        "backlog": {"open": len(open_rows), "by_stage": backlog,
                    "buckets": [name for name, _ in AGE_BUCKETS]},
        "trend": trend,
        "heatmap": {"weekdays": list(WEEKDAYS), "counts": heat, "total": len(moments),
                    "source": "breach events" if breaches is not None else "acceptance time"},
    }


# --- text -----------------------------------------------------------------------------------------------------------
def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def fmt_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def render_text(k: dict[str, Any]) -> str:
    p = k["period"]
    out = [f"KPI report {p['label'][0]} → {p['label'][1]}"
           f"{'  policy ' + p['policy'] if p['policy'] else ''}  ({k['volume']['total']} requests)", ""]
    out.append("volume")
    for label, key in (("channel", "by_channel"), ("type", "by_type"), ("priority", "by_priority")):
        out.append(f"  by {label:<9} " + "  ".join(f"{name} {n}" for name, n in k["volume"][key].items()))
    out += ["", f"{'time':<22}{'n':>5}{'mean':>9}{'p50':>9}{'p90':>9}"]
    for label, key in (("first response", "first_response_time"), ("resolution", "resolution_time")):
        d = k[key]
        out.append(f"  {label:<20}{d['n']:>5}{fmt_duration(d['mean']):>9}{fmt_duration(d['p50']):>9}"
                   f"{fmt_duration(d['p90']):>9}")
    out += ["", f"{'SLA compliance':<22}{'settled':>8}{'breached':>10}{'compliance':>12}"]
    for clock, s in k["sla"].items():
        out.append(f"  {clock.replace('_', ' ') if clock != 'all' else 'all clocks':<20}{s['settled']:>8}"
                   f"{s['breached']:>10}{fmt_rate(s['compliance']):>12}")
    out += ["", "rates"]
    rates = [("first-contact resolution", k["first_contact_resolution"]["count"],
              k["first_contact_resolution"]["n"], fmt_rate(k["first_contact_resolution"]["rate"])),
             ("reopen", k["reopen"]["count"], k["reopen"]["n"], fmt_rate(k["reopen"]["rate"])),
             ("escalation", k["escalation"]["count"], k["escalation"]["n"], fmt_rate(k["escalation"]["rate"])),
             ("complaint", k["complaint"]["count"], k["complaint"]["n"], fmt_rate(k["complaint"]["rate"])),
             ("CSAT (target ≥ 85 %)", k["csat"]["satisfied"], k["csat"]["n"], fmt_rate(k["csat"]["rate"]))]
    out += [f"  {name:<26}{part:>4} / {whole:<4}{value:>9}" for name, part, whole, value in rates]
    n = k["nps"]
    score = "—" if n["score"] is None else f"{n['score']:+.0f}"
    mean = k["csat"]["mean_score"]
    out.append(f"  {'NPS':<26}{score:>20}   ({n['promoters']} promoters, {n['passives']} passives, "
               f"{n['detractors']} detractors)")
    out.append(f"  {'mean satisfaction (/100)':<26}{'—' if mean is None else f'{mean:.1f}':>20}")
    out += ["", f"backlog: {k['backlog']['open']} open"]
    for stage, b in k["backlog"]["by_stage"].items():
        if b["count"]:
            ages = "  ".join(f"{name}: {c}" for name, c in b["buckets"].items())
            out.append(f"  {stage:<12}{b['count']:>4}  mean age {fmt_duration(b['mean_age'])}  oldest "
                       f"{fmt_duration(b['max_age'])}  {ages}")
    return "\n".join(out)
