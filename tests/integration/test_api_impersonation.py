"""Impersonation matrix over HTTP (issue 14): no token, an expired one, one from another issuer, a forged `system`,
a role that may not act, a body naming another actor, a customer link used for another question, as a bearer token
or altered for another request, a bearer token used as a link: every one refused with 401, 403 or 422, and both
requests' state and audit trails unchanged. Real JWTs, a real worker on the time-skipping server, real SQLite."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import Settings
from archive.store import Archive
from infra.issuer import Issuer, issuer_from_env
from models.intake import workflow_id_for
from tests.conftest import STARTED, running_worker

pytestmark = pytest.mark.integration
PUBLIC = "http://kefu.test"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def setup(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[httpx.AsyncClient, Issuer]]:
    issuer = issuer_from_env({"KEFU_DATA_DIR": str(tmp_path)})
    monkeypatch.setenv("KEFU_ISSUER_KEY_FILE", str(tmp_path / "issuer.key"))
    monkeypatch.setenv("KEFU_PUBLIC_URL", PUBLIC)
    app = create_app(ts_env.client, archive, settings=Settings(public_url=PUBLIC), issuer=issuer,
                     task_queue=task_queue)
    async with running_worker(ts_env, archive, task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        yield http, issuer


async def until(read: Any, ready: Any) -> Any:
    for _ in range(150):
        value = await asyncio.to_thread(read)
        if ready(value):
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"never ready: {value!r}"[:300])


async def test_every_forged_or_misdirected_call_is_refused_and_changes_nothing(
        setup: tuple[httpx.AsyncClient, Issuer], archive: Archive, tmp_path: Path) -> None:
    http, issuer = setup

    def as_(sub: str, role: str, ttl: timedelta = timedelta(minutes=10), now: datetime | None = None
            ) -> dict[str, str]:
        return bearer(issuer.issue(sub, role, ttl, now=now))  # type: ignore[arg-type]

    requests = []
    for _ in range(2):
        rid = f"imp-{uuid.uuid4().hex[:8]}"
        STARTED.append(workflow_id_for(rid))
        body = {"request_id": rid, "channel": "phone", "description": "我想查询一下上个月的账单明细",
                "type_hint": "inquiry", "customer": {"id": "C-1", "name": "李雷", "phone": "13900001111"}}
        assert (await http.post("/requests", json=body, headers=as_("crm", "agent"))).status_code == 201
        respond = {"action": {"kind": "respond", "message": "您好"}}
        assert (await http.post(f"/requests/{rid}/act", json=respond, headers=as_("agent-li", "agent"))).is_success
        requests.append(rid)
    rid, resolved_rid = requests
    done = await http.post(f"/requests/{resolved_rid}/act", json={"action": {"kind": "resolve", "summary": "已答复"}},
                           headers=as_("agent-li", "agent"))
    assert done.json()["stage"] == "resolved"
    notices = await until(lambda: archive.outbox(resolved_rid), lambda rows: any(r["template"] == "resolution"
                                                                                  for r in rows))
    link = re.search(rf"{PUBLIC}/c/(\S+)", next(r["body"] for r in notices if r["template"] == "resolution")).group(1)  # type: ignore[union-attr]

    async def snapshot() -> list[Any]:
        await asyncio.sleep(0.3)  # anything a refused call had written would be flushed by now
        states = [(await http.get(f"/requests/{r}/status", headers=as_("mgr-1", "manager"))).json() for r in requests]
        for state in states:  # a running clock's consumed time moves on; its deadline and the rest must not
            state["clocks"] = {name: {k: v for k, v in clock.items() if k != "consumed_seconds"}
                               for name, clock in state["clocks"].items()}
        return [states, [archive.audit_trail(r) for r in requests]]

    before = await snapshot()
    assign = {"action": {"kind": "assign", "owner": "agent-b"}}
    act = f"/requests/{rid}/act"
    stranger = issuer_from_env({"KEFU_DATA_DIR": str(tmp_path / "another-kefu")})
    system = jwt.encode({"iss": "kefu", "aud": "kefu", "sub": "kefu", "kefu_role": "system",
                         "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}, issuer.key,
                        algorithm="EdDSA", headers={"kid": issuer.key_id})
    head, claims, signature = link.split(".")
    redirected = json.loads(jwt.utils.base64url_decode(claims)) | {"req": rid}
    altered = ".".join([head, jwt.utils.base64url_encode(json.dumps(redirected).encode()).decode(), signature])
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    matrix: list[tuple[str, str, str, dict[str, Any] | None, dict[str, str], int, str]] = [
        ("no token", "POST", act, assign, {}, 401, "Authorization: Bearer"),
        ("expired token", "POST", act, assign, as_("sup-1", "supervisor", timedelta(hours=1), long_ago), 401,
         "expired"),
        ("another issuer's token", "POST", act, assign, bearer(stranger.issue("sup-1", "supervisor",
                                                                              timedelta(hours=1))), 401,
         "bad signature"),
        ("role system in a token", "POST", act, assign, bearer(system), 403, "role system"),
        ("a customer's bearer token", "POST", act, assign, as_("C-1", "customer"), 403, "link in their notice"),
        ("an agent reassigns an owned request", "POST", act, assign, as_("agent-c", "agent"), 422,
         "only a supervisor and above reassigns"),
        ("an agent escalates", "POST", f"/requests/{rid}/escalate", {"reason": "x"}, as_("agent-li", "agent"), 422,
         "role agent may not"),
        ("a body naming another actor", "POST", act, {**assign, "actor": {"id": "sup-1", "role": "supervisor"}},
         as_("agent-li", "agent"), 403, "is not the caller"),
        ("a body naming the engine", "POST", f"/requests/{rid}/escalate",
         {"reason": "x", "actor": {"id": "kefu", "role": "system"}}, as_("sup-1", "supervisor"), 403,
         "is not the caller"),
        ("a confirmation link for the survey", "POST", f"/customer/{link}/survey", {"score": 10}, {}, 403,
         "answers confirm, not survey"),
        ("a link as a bearer token", "POST", f"/requests/{resolved_rid}/act", assign, bearer(link), 401,
         "another audience"),
        ("a link altered for another request", "POST", f"/customer/{altered}/confirm", {"accepted": False}, {}, 401,
         "bad signature"),
        ("a bearer token as a link", "POST", f"/customer/{issuer.issue('sup-1', 'supervisor', timedelta(hours=1))}"
         "/confirm", {"accepted": False}, {}, 401, "another audience"),
        ("a customer submits", "POST", "/requests", {"request_id": "x-1"}, as_("C-1", "customer"), 403,
         "link in their notice"),
        ("an agent imports agents", "POST", "/agents", [], as_("agent-li", "agent"), 403, "role agent may not"),
        ("an agent reads the KPIs", "GET", "/reports/kpi?from=2026-01-01&to=2026-12-31", None,
         as_("agent-li", "agent"), 403, "manager and above"),
        ("an agent opens another's request", "GET", f"/requests/{rid}", None, as_("agent-c", "agent"), 404,
         "you may see"),
    ]
    for label, method, path, body, headers, status, words in matrix:
        answer = await http.request(method, path, json=body, headers=headers)
        assert answer.status_code == status, (label, answer.text)
        assert words in answer.json()["error"]["message"], (label, answer.text)
        assert "Traceback" not in answer.text and "13900001111" not in answer.text, label
    assert await snapshot() == before

    allowed = await http.post(act, json=assign, headers=as_("sup-1", "supervisor"))  # the verified supervisor can
    assert allowed.status_code == 200 and allowed.json()["owner"] == "agent-b"
    confirmed = await http.post(f"/customer/{link}/confirm", json={"accepted": True})
    assert confirmed.status_code == 200, confirmed.text
