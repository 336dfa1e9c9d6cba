"""The HTTP API (issue 14) against the session's real dev server and a real PostgreSQL archive, with a worker on a
unique task queue in this process and real JWTs from kefu's issuer: submit (and its idempotent retry, 409 on other
content), act once per Idempotency-Key, escalation refused with the workflow's reason, the customer's confirmation
through the link in the resolution notice, lists, the KPI report, agents, incidents, health."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import Settings
from archive import migrate
from archive.incidents import get_incident
from archive.reads import access_log
from archive.store import Archive
from infra.issuer import Issuer, issuer_from_env
from models.intake import workflow_id_for
from worker import build_worker

pytestmark = pytest.mark.integration
PUBLIC = "http://kefu.test"


@dataclass
class Api:
    http: httpx.AsyncClient
    archive: Archive
    issuer: Issuer
    started: list[str]

    def auth(self, sub: str, role: str, **headers: str) -> dict[str, str]:
        token = self.issuer.issue(sub, role, timedelta(minutes=10))  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}", **headers}

    async def submit(self, body: dict[str, Any], sub: str = "crm", role: str = "agent") -> httpx.Response:
        self.started.append(workflow_id_for(body["request_id"]))
        return await self.http.post("/requests", json=body, headers=self.auth(sub, role))

    async def eventually(self, read: Callable[[], Any], ready: Callable[[Any], bool], timeout: float = 15) -> Any:
        """The archive is written by the workflow's flusher shortly after each change: poll it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await asyncio.to_thread(read)
            if ready(value) or asyncio.get_running_loop().time() > deadline:
                assert ready(value), f"never ready: {value!r}"[:500]
                return value
            await asyncio.sleep(0.1)


def intake(request_id: str, **overrides: Any) -> dict[str, Any]:
    return {"request_id": request_id, "channel": "phone", "description": "我想查询一下上个月的账单明细",
            "customer": {"id": "C-7001", "name": "韩梅梅", "phone": "13900002222"}, "type_hint": "inquiry",
            **overrides}


@pytest_asyncio.fixture
async def api(dev_env: WorkflowEnvironment, pg_url: str, unique_queue: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch, started: list[str]) -> AsyncIterator[Api]:
    issuer = issuer_from_env({"KEFU_DATA_DIR": str(tmp_path)})
    monkeypatch.setenv("KEFU_ISSUER_KEY_FILE", str(tmp_path / "issuer.key"))  # the worker signs links with it too
    monkeypatch.setenv("KEFU_PUBLIC_URL", PUBLIC)
    archive = Archive(pg_url)
    migrate.prepare(archive)
    app = create_app(dev_env.client, archive, settings=Settings(public_url=PUBLIC), issuer=issuer,
                     task_queue=unique_queue)
    try:
        async with build_worker(dev_env.client, archive, task_queue=unique_queue), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
            yield Api(http, archive, issuer, started)
    finally:
        archive.close()


async def test_submit_act_escalate_confirm_by_link_and_list(api: Api) -> None:
    assert (await api.http.get("/health")).json() == {"status": "ok", "temporal": "ok", "database": "ok"}
    rid = f"api-{uuid.uuid4().hex[:10]}"
    created = await api.submit(intake(rid))
    assert created.status_code == 201, created.text
    ticket = created.json()["ticket"]
    assert ticket.startswith("KF-") and created.json()["stage"] == "handling"
    again = await api.submit(intake(rid))  # a retry: the same request, no second start
    assert (again.status_code, again.json()["ticket"]) == (200, ticket)
    other = await api.submit(intake(rid, description="另一件事", customer={"id": "C-7001", "name": "韩梅梅",
                                                                       "phone": "13900003333"}))
    assert other.status_code == 409
    assert other.json()["error"] == {"field": "request_id", "message": f"{rid} was submitted before with different "
                                     "content (customer.phone, description); send a new request_id for a new request"}
    assert "13900003333" not in other.text and "另一件事" not in other.text

    agent = api.auth("agent-li", "agent", **{"Idempotency-Key": f"respond-{rid}"})
    respond = {"action": {"kind": "respond", "message": "您好，已受理"}}
    first = await api.http.post(f"/requests/{rid}/act", json=respond, headers=agent)
    assert first.status_code == 200, first.text
    assert first.json()["owner"] == "agent-li"
    retried = await api.http.post(f"/requests/{rid}/act", json=respond, headers=agent)  # same key: acts once
    assert retried.status_code == 200 and retried.json()["owner"] == "agent-li"
    trail = await api.eventually(lambda: api.archive.audit_trail(rid),
                                 lambda t: any(e["action"] == "respond" for e in t))
    assert [e["action"] for e in trail].count("respond") == 1

    refused = await api.http.post(f"/requests/{rid}/escalate", json={"reason": "我来升级"},
                                  headers=api.auth("agent-li", "agent"))
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith("role agent may not do this")
    escalated = await api.http.post(f"/requests/{rid}/escalate", json={"reason": "客户情绪激动"},
                                    headers=api.auth("sup-1", "supervisor"))
    assert escalated.status_code == 200 and escalated.json()["escalation_level"] == 1

    resolved = await api.http.post(f"/requests/{rid}/act", json={"action": {"kind": "resolve", "summary": "已说明"}},
                                   headers=api.auth("agent-li", "agent"))
    assert resolved.status_code == 200 and resolved.json()["stage"] == "resolved", resolved.text
    notices = await api.eventually(lambda: api.archive.outbox(rid),
                                   lambda rows: any(r["template"] == "resolution" for r in rows))
    body = next(r["body"] for r in notices if r["template"] == "resolution")
    token = re.search(rf"{PUBLIC}/c/(\S+)", body).group(1)  # type: ignore[union-attr]
    shown = await api.http.get(f"/customer/{token}")
    assert shown.status_code == 200 and shown.json()["question"] == "confirm" and shown.json()["ticket"] == ticket
    assert (await api.http.get(f"/c/{token}")).headers["content-type"].startswith("text/html")
    assert (await api.http.post(f"/customer/{token}/survey", json={"score": 90})).status_code == 403
    confirmed = await api.http.post(f"/customer/{token}/confirm", json={"accepted": True})
    assert confirmed.status_code == 200, confirmed.text
    await api.eventually(lambda: api.archive.get(rid), lambda row: row["stage"] in ("closed", "revisit"))

    managed = (await api.http.get("/requests", headers=api.auth("mgr-1", "manager"))).json()
    assert [r["request_id"] for r in managed] == [rid]
    assert managed[0]["customer_name"] == "韩**" and managed[0]["customer_phone"] == "139****2222"
    assert managed[0]["description"] is None
    own = (await api.http.get("/requests", headers=api.auth("agent-li", "agent"))).json()
    assert own[0]["customer_phone"] == "13900002222"  # the handler calls the customer: shown, and logged
    logged = [(e["actor_id"], e["path"]) for e in access_log(api.archive, rid)]
    assert ("customer", "GET /customer/{token}") in logged and ("agent-li", "GET /requests") in logged
    assert ("mgr-1", "GET /requests") not in logged  # masked: no personal data read


async def test_report_and_agents_by_role(api: Api) -> None:
    rid = f"api-{uuid.uuid4().hex[:10]}"
    assert (await api.submit(intake(rid))).status_code == 201
    await api.eventually(lambda: api.archive.get(rid), lambda row: row is not None)
    period = {"from": "2020-01-01", "to": "2040-12-31"}
    report = await api.http.get("/reports/kpi", params=period, headers=api.auth("mgr-1", "manager"))
    assert report.status_code == 200 and report.json()["volume"]["total"] == 1
    page = await api.http.get("/reports/kpi.html", params=period, headers=api.auth("mgr-1", "manager"))
    assert page.status_code == 200 and "<svg" in page.text
    denied = await api.http.get("/reports/kpi", params=period, headers=api.auth("sup-1", "supervisor"))
    assert denied.status_code == 403 and denied.json()["error"]["field"] == "Authorization"
    bad = await api.http.get("/reports/kpi", params={"from": "2026-13-01", "to": "2026-12-31"},
                             headers=api.auth("mgr-1", "manager"))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "from"

    agents = [{"id": "li.na", "name": "李娜", "team": "frontline", "capacity": 5}]
    assert (await api.http.post("/agents", json=agents, headers=api.auth("agent-li", "agent"))).status_code == 403
    imported = await api.http.post("/agents", json=agents, headers=api.auth("sup-1", "supervisor"))
    assert imported.json() == {"imported": 1}
    twice = await api.http.post("/agents", json=agents * 2, headers=api.auth("sup-1", "supervisor"))
    assert twice.status_code == 400 and twice.json()["error"] == {"field": "1.id", "message": "li.na appears twice"}
    listed = (await api.http.get("/agents", headers=api.auth("lead-1", "team_lead"))).json()
    assert [(a["id"], a["open_cases"], a["capacity"]) for a in listed] == [("li.na", 0, 5)]


async def test_incident_declare_update_resolve_review(api: Api) -> None:
    iid = f"INC-{uuid.uuid4().hex[:8]}"
    api.started.append(f"kefu-inc-{iid}")
    declaration = {"incident_id": iid, "level": 3, "title": "机房断电", "lead": "sup-1"}
    sup = api.auth("sup-1", "supervisor")
    assert (await api.http.post("/incidents", json=declaration, headers=api.auth("agent-li", "agent"))).status_code \
        == 403
    declared = await api.http.post("/incidents", json=declaration, headers=sup)
    assert declared.status_code == 201 and declared.json()["stage"] == "open", declared.text
    again = await api.http.post("/incidents", json=declaration, headers=sup)
    assert again.status_code == 409 and again.json()["error"]["field"] == "incident_id"
    update = await api.http.post(f"/incidents/{iid}/update", json={"text": "已切换备用电源"}, headers=sup)
    assert update.status_code == 200 and update.json()["updates"] == 1
    early = await api.http.post(f"/incidents/{iid}/review", json={"findings": "x"}, headers=sup)
    assert early.status_code == 422, early.text
    resolved = await api.http.post(f"/incidents/{iid}/resolve", json={"summary": "已恢复", "root_cause": "电源故障"},
                                   headers=sup)
    assert resolved.json()["stage"] == "resolved"
    reviewed = await api.http.post(f"/incidents/{iid}/review", json={"findings": "加装 UPS"}, headers=sup)
    assert reviewed.json()["stage"] == "reviewed"
    assert (await api.http.get(f"/incidents/{iid}", headers=sup)).json()["stage"] == "reviewed"
    await api.eventually(lambda: get_incident(api.archive, iid), lambda row: row and row["stage"] == "reviewed")
    listed = (await api.http.get("/incidents?stage=reviewed", headers=sup)).json()
    assert iid in [i["incident_id"] for i in listed]
    missing = await api.http.get("/incidents/INC-none", headers=sup)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "incident_id"
