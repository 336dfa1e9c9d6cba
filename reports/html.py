"""The KPI page: one self-contained HTML file (inline CSS and SVG, no scripts, no external assets).

The charts are SVG built here from the KPI dict (reports/kpi.py) and placed in templates/report.html.j2:
daily volume with SLA compliance (#trend), breaches by weekday and hour in Asia/Shanghai (#heatmap), and the
open backlog by stage and age (#backlog).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from reports.kpi import fmt_duration, fmt_rate

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
BLUE, GREEN, RED, AMBER = "#2563eb", "#059669", "#dc2626", "#d97706"
AGE_COLOURS = ("#93c5fd", "#3b82f6", "#f59e0b", "#dc2626")  # young to old


def _t(x: float, y: float, text: Any, *, size: int = 11, fill: str = MUTED, anchor: str = "middle",
       weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" text-anchor="{anchor}" '
            f'font-weight="{weight}">{escape(str(text))}</text>')


def trend_svg(trend: list[dict[str, Any]], width: int = 960, height: int = 300) -> str:
    """Bars: requests accepted per day; line: share of that day's requests without a breach (right axis)."""
    left, right, top, bottom = 48, 52, 20, 46
    w, h = width - left - right, height - top - bottom
    parts = [f'<svg id="trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="daily volume and SLA compliance">']
    if not trend:
        parts += [_t(width / 2, height / 2, "no requests in this period", size=14), "</svg>"]
        return "".join(parts)
    peak = max(d["volume"] for d in trend) or 1
    step = max(1, -(-peak // 4))
    top_value = step * -(-peak // step)
    for i in range(0, top_value + 1, step):  # left axis: volume
        y = top + h - h * i / top_value
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_t(left - 6, y + 4, i, anchor="end"))
    for pct in (0, 50, 100):  # right axis: compliance
        y = top + h - h * pct / 100
        parts.append(_t(left + w + 6, y + 4, f"{pct}%", anchor="start", fill=GREEN))
    slot = w / len(trend)
    bar = max(1.0, min(28.0, slot * 0.7))
    points = []
    label_every = max(1, round(len(trend) / 12))
    for i, d in enumerate(trend):
        cx = left + slot * (i + 0.5)
        bh = h * d["volume"] / top_value
        parts.append(f'<rect x="{cx - bar / 2:.1f}" y="{top + h - bh:.1f}" width="{bar:.1f}" height="{bh:.1f}" '
                     f'fill="{BLUE}" opacity="0.8"><title>{escape(d["day"])}: {d["volume"]} requests, '
                     f'{fmt_rate(d["compliance"])} without breach</title></rect>')
        if d["compliance"] is not None:
            points.append((cx, top + h - h * d["compliance"]))
        if i % label_every == 0:
            parts.append(_t(cx, top + h + 16, d["day"][5:], size=10))
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{GREEN}" stroke-width="2"/>')
    parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{GREEN}"/>' for x, y in points]
    legend_y = height - 10
    parts += [f'<rect x="{left}" y="{legend_y - 9}" width="12" height="10" fill="{BLUE}" opacity="0.8"/>',
              _t(left + 18, legend_y, "requests accepted per day", anchor="start", fill=INK),
              f'<line x1="{left + 200}" y1="{legend_y - 4}" x2="{left + 220}" y2="{legend_y - 4}" '
              f'stroke="{GREEN}" stroke-width="2"/>',
              _t(left + 226, legend_y, "share without an SLA breach (right axis)", anchor="start", fill=INK),
              "</svg>"]
    return "".join(parts)


def heatmap_svg(heatmap: dict[str, Any], width: int = 960) -> str:
    """Weekday rows x hour columns; darker red = more breaches."""
    left, top, cell_w, cell_h = 44, 22, (width - 44 - 12) / 24, 26
    height = top + cell_h * 7 + 34
    counts = heatmap["counts"]
    peak = max((c for row in counts for c in row), default=0)
    parts = [f'<svg id="heatmap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" '
             f'width="100%" role="img" aria-label="SLA breaches by weekday and hour, Asia/Shanghai">']
    for hour in range(24):
        parts.append(_t(left + cell_w * (hour + 0.5), top - 7, f"{hour:02d}", size=10))
    for day, row in enumerate(counts):
        y = top + cell_h * day
        parts.append(_t(left - 6, y + cell_h / 2 + 4, heatmap["weekdays"][day], anchor="end"))
        for hour, c in enumerate(row):
            x = left + cell_w * hour
            if c:
                alpha = 0.25 + 0.75 * c / peak
                fill = f'fill="{RED}" fill-opacity="{alpha:.2f}"'
            else:
                fill = 'fill="#f3f4f6"'
            parts.append(f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{cell_w - 2:.1f}" height="{cell_h - 2:.1f}" '
                         f'rx="3" {fill}><title>{heatmap["weekdays"][day]} {hour:02d}:00–{hour:02d}:59: {c} '
                         f'breach{"es" if c != 1 else ""}</title></rect>')
            if c:
                parts.append(_t(x + cell_w / 2, y + cell_h / 2 + 4, c, size=10, fill="#fff", weight="bold"))
    legend_y = top + cell_h * 7 + 22
    parts.append(_t(left, legend_y, f"{heatmap['total']} breaches · hour and weekday in Asia/Shanghai · placed by "
                                    f"{heatmap['source']}", anchor="start"))
    parts.append("</svg>")
    return "".join(parts)


def backlog_svg(backlog: dict[str, Any], width: int = 960) -> str:
    """One horizontal bar per stage with open requests, split by age bucket."""
    stages = [(s, b) for s, b in backlog["by_stage"].items() if b["count"]]
    left, top, row_h = 110, 12, 34
    height = top + row_h * max(1, len(stages)) + 40
    parts = [f'<svg id="backlog" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="open requests by stage and age">']
    if not stages:
        parts.append(f'<rect x="{left}" y="{top}" width="{width - left - 20}" height="{row_h - 8}" rx="4" '
                     f'fill="#ecfdf5" stroke="{GREEN}"/>')
        parts.append(_t(left + (width - left - 20) / 2, top + row_h / 2 + 1, "no open requests: backlog is empty",
                        size=13, fill=GREEN, weight="bold"))
    peak = max((b["count"] for _, b in stages), default=1)
    w = width - left - 170  # room for the label after the longest bar
    for i, (stage, b) in enumerate(stages):
        y = top + row_h * i
        parts.append(_t(left - 8, y + row_h / 2 + 2, stage, anchor="end", fill=INK, size=12))
        x = float(left)
        for colour, (name, c) in zip(AGE_COLOURS, b["buckets"].items(), strict=False):
            if not c:
                continue
            seg = w * c / peak
            parts.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{seg:.1f}" height="{row_h - 10}" fill="{colour}">'
                         f'<title>{escape(stage)}, {escape(name)}: {c}</title></rect>')
            x += seg
        parts.append(_t(x + 6, y + row_h / 2 + 2, f"{b['count']} · oldest {fmt_duration(b['max_age'])}",
                        anchor="start", fill=INK))
    legend_y = height - 12
    x = float(left)
    for colour, name in zip(AGE_COLOURS, backlog["buckets"], strict=False):
        parts.append(f'<rect x="{x:.1f}" y="{legend_y - 9}" width="12" height="10" fill="{colour}"/>')
        parts.append(_t(x + 16, legend_y, f"age {name}", anchor="start", fill=INK))
        x += 100
    parts.append("</svg>")
    return "".join(parts)


def cards(k: dict[str, Any]) -> list[dict[str, Any]]:
    """Headline figures; target and whether it is met where a manual names one."""
    def card(label: str, value: str, note: str, ok: bool | None = None) -> dict[str, Any]:
        return {"label": label, "value": value, "note": note, "ok": ok}

    csat, sla = k["csat"]["rate"], k["sla"]["all"]["compliance"]
    nps = k["nps"]["score"]
    return [
        card("Requests", str(k["volume"]["total"]), f"{k['backlog']['open']} still open"),
        card("CSAT", fmt_rate(csat), f"target ≥ 85 % (002 §4.1) · {k['csat']['n']} surveyed",
             None if csat is None else csat >= 0.85),
        card("Service conformity", fmt_rate(sla), "no clock breached · target ≥ 95 % (003 §7.1)",
             None if sla is None else sla >= 0.95),
        card("NPS", "—" if nps is None else f"{nps:+.0f}", f"{k['nps']['n']} answers"),
        card("First response p50", fmt_duration(k["first_response_time"]["p50"]),
             f"p90 {fmt_duration(k['first_response_time']['p90'])}"),
        card("Resolution p50", fmt_duration(k["resolution_time"]["p50"]),
             f"p90 {fmt_duration(k['resolution_time']['p90'])}"),
        card("First-contact resolution", fmt_rate(k["first_contact_resolution"]["rate"]),
             f"of {k['first_contact_resolution']['n']} resolved"),
        card("Reopen rate", fmt_rate(k["reopen"]["rate"]), f"of {k['reopen']['n']} closed"),
        card("Escalation rate", fmt_rate(k["escalation"]["rate"]), "escalation level > 0"),
        card("Complaint rate", fmt_rate(k["complaint"]["rate"]), f"{k['complaint']['count']} complaints"),
    ]


def render(k: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["rate"] = fmt_rate
    env.filters["duration"] = fmt_duration
    return env.get_template("report.html.j2").render(
        k=k, cards=cards(k), trend=Markup(trend_svg(k["trend"])),  # SVG built here, text through escape()
        heatmap=Markup(heatmap_svg(k["heatmap"])), backlog=Markup(backlog_svg(k["backlog"])))


def write(k: dict[str, Any], path: str | Path) -> Path:
    target = Path(path)
    target.write_text(render(k), encoding="utf-8")
    return target
