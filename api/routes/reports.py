"""The KPI report of a period (SEEDS §9; docs/reports.md), for managers (001 §7.2: management sees aggregates)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from api import kpi
from api.deps import State, at_least
from infra.principal import Principal
from reports.html import render

router = APIRouter(prefix="/reports", tags=["reports"])
Manager = Annotated[Principal, Depends(at_least("manager", "read the KPI report"))]
From = Annotated[str, Query(alias="from", description="YYYY-MM-DD (Asia/Shanghai) or an ISO time with an offset")]
To = Annotated[str, Query(description="YYYY-MM-DD, inclusive, or an ISO time with an offset")]


def _figures(app: State, date_from: str, date_to: str, policy: str | None) -> dict[str, Any]:
    start, end = kpi.period(date_from, date_to)
    return kpi.figures(app.archive, start, end, (date_from, date_to), policy)


@router.get("/kpi")
def kpi_json(app: State, caller: Manager, date_from: From, to: To, policy: str | None = None) -> dict[str, Any]:
    """Volume, response and resolution times, SLA compliance per clock, first-contact resolution, reopen,
    escalation, CSAT, NPS and backlog (the same figures as `kefu report --json`)."""
    return _figures(app, date_from, to, policy)


@router.get("/kpi.html", response_class=HTMLResponse)
def kpi_html(app: State, caller: Manager, date_from: From, to: To, policy: str | None = None) -> HTMLResponse:
    """The same figures as a self-contained page with charts (`kefu report --html`)."""
    return HTMLResponse(render(_figures(app, date_from, to, policy)))
