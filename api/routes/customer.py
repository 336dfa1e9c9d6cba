"""Customers answer through signed, expiring links (issue 14; 002 §2.2.1 confirmation, 003 §4.2 revisit survey).

The link in the resolution or revisit notice carries a token for one request and one question (infra/issuer.py);
no customer logs in. `GET /c/{token}` is the page, `GET /customer/{token}` what it shows, and
`POST /customer/{token}/confirm|survey` the answer, sent to the workflow as role `customer`. A link never answers
another question, and a bearer token is never a link (their audiences differ).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import IdempotencyKey, State
from api.errors import FORBIDDEN, NOT_FOUND, UNAUTHORIZED, ApiError
from api.routes.requests import live_status
from api.temporal import act_as
from archive.reads import log_reads
from infra.issuer import CustomerLink, Question, TokenError
from infra.principal import Principal
from models.actions import Confirm, SurveyAnswer
from models.intake import workflow_id_for
from models.status import RequestStatus

router = APIRouter(tags=["customer links"])
CUSTOMER = Principal(sub="customer", role="customer")
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


class CustomerView(BaseModel):
    """What a customer's link shows: their request and the one question it answers."""

    ticket: str
    question: Question
    stage: str
    description: str
    summary: str | None
    answered: bool
    expires_at: datetime
    language: str


def link(app: State, token: str, question: Question | None = None) -> CustomerLink:
    try:
        found = app.issuer.verify_link(token)
    except TokenError as exc:
        raise ApiError(UNAUTHORIZED, "token", str(exc)) from None
    if question is not None and found.question != question:
        raise ApiError(FORBIDDEN, "token", f"this link answers {found.question}, not {question}")
    return found


async def view(app: State, token: str) -> CustomerView:
    found = link(app, token)
    row = await run_in_threadpool(app.archive.get, found.request_id)
    if row is None:
        raise ApiError(NOT_FOUND, "token", "the request of this link is not in the archive")
    status = await live_status(app, found.request_id)
    await run_in_threadpool(log_reads, app.archive, CUSTOMER.sub, CUSTOMER.role, [found.request_id],
                            "GET /customer/{token}", "description")
    answered = (status.confirmed if found.question == "confirm" else status.satisfaction) is not None
    return CustomerView(ticket=status.ticket, question=found.question, stage=status.stage,
                        description=row["description"], summary=status.summary, answered=answered,
                        expires_at=found.expires_at, language=row["customer_language"])


@router.get("/customer/{token}", response_model=CustomerView)
async def customer_request(token: str, app: State) -> CustomerView:
    """The customer's own request, through its link (the read is logged)."""
    return await view(app, token)


@router.get("/c/{token}", response_class=HTMLResponse, include_in_schema=False)
async def customer_page(token: str, app: State) -> HTMLResponse:
    shown = await view(app, token)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    page = env.get_template("customer.html.j2").render(view=shown, token=token)
    return HTMLResponse(page, headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


async def answer(app: State, token: str, question: Question, payload: BaseModel, key: str | None) -> dict[str, Any]:
    found = link(app, token, question)
    # one link, one answer: a retried POST without its own key reaches the same update
    key = key or "link-" + hashlib.sha256(token.encode()).hexdigest()[:40]
    status = await act_as(app.client, CUSTOMER, workflow_id_for(found.request_id), question, payload, RequestStatus,
                          key)
    return {"ticket": status.ticket, "stage": status.stage, "answered": True}


@router.post("/customer/{token}/confirm")
async def confirm(token: str, body: Confirm, app: State, key: IdempotencyKey = None) -> dict[str, Any]:
    """The customer confirms (or rejects) the reported result."""
    return await answer(app, token, "confirm", body, key)


@router.post("/customer/{token}/survey")
async def survey(token: str, body: SurveyAnswer, app: State, key: IdempotencyKey = None) -> dict[str, Any]:
    """The customer's revisit survey answer."""
    return await answer(app, token, "survey", body, key)
