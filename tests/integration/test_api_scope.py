"""Read-scope matrix (issue 14; 001 §7.2 tiered information sharing, 000 §6.3 access log, 002 §6.3 masking): each role
lists and opens only the requests it may, lists mask the customer's contact for roles that do not call customers,
and every read of personal data leaves an access-log row naming who, what and through which path. Real SQLite and
real PostgreSQL archives, real JWTs; the archive rows are written as the worker writes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import Settings
from archive import migrate
from archive.directory import Directory
from archive.reads import access_log
from archive.store import Archive
from infra.issuer import Issuer, issuer_from_env
from models.assignment import Agent, AssignRequest
from models.intake import Customer
from models.records import PersistBatch, Projection, Registration

pytestmark = pytest.mark.integration
T = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
AGENTS = [("a1", "frontline", "agent"), ("a2", "frontline", "agent"), ("lead-f", "frontline", "team_lead"),
          ("sup-f", "frontline", "supervisor"), ("b1", "repair_desk", "agent")]
# request id → (owner, complaint owner, sub-state, escalation level)
REQUESTS: dict[str, tuple[str | None, str | None, str, int]] = {
    "r-own": ("a1", None, "in_progress", 0),
    "r-mate": ("a2", None, "in_progress", 0),
    "r-held": ("ext-7", None, "in_progress", 0),  # a frontline hold (assignment), owned by someone outside
    "r-complaint": ("b1", "a1", "in_progress", 0),  # a1 took the complaint first (首诉负责)
    "r-offer": ("b1", None, "assigned", 0),  # offered to b1, not accepted yet
    "r-other": ("b1", None, "in_progress", 0),
    "r-esc": ("b1", None, "in_progress", 1),
    "r-queue": (None, None, "pending", 0),
}
ALL = set(REQUESTS)
FRONTLINE = {"r-own", "r-mate", "r-held", "r-complaint"}
SEES: dict[tuple[str, str], set[str]] = {
    ("a1", "agent"): FRONTLINE,
    ("b1", "agent"): {"r-complaint", "r-offer", "r-other", "r-esc"},
    ("z9", "agent"): set(),  # not in the directory: only what they own
    ("lead-f", "team_lead"): FRONTLINE | {"r-queue"},
    ("sup-f", "supervisor"): FRONTLINE | {"r-queue", "r-esc"},
    ("mgr-1", "manager"): ALL,
}


def seed(archive: Archive) -> None:
    directory = Directory(archive.engine)
    directory.upsert_agents([Agent(id=i, name=i, team=team, role=role, capacity=5) for i, team, role in AGENTS])
    for n, (rid, (owner, complaint_owner, sub_state, level)) in enumerate(REQUESTS.items()):
        customer = Customer(id=f"C-{n}", name="韩梅梅", phone=f"1390000{n:04d}")
        archive.register(Registration(request_id=rid, workflow_id=f"kefu-sr-{rid}", policy_id="service_center",
                                      policy_version=1, channel="phone", customer=customer, description="宽带断了",
                                      received_at=T, accepted_at=T))
        archive.persist(PersistBatch(projection=Projection(
            request_id=rid, ticket="", workflow_id=f"kefu-sr-{rid}", policy_id="service_center", policy_version=1,
            channel="phone", stage="handling", sub_state=sub_state, request_type="repair", owner=owner,
            complaint_owner=complaint_owner, escalation_level=level, accepted_at=T, updated_at=T + timedelta(minutes=1),
            next_deadline=T + timedelta(hours=1))))
    held = directory.assign(AssignRequest(request_id="r-held", attempt=1, strategy="balanced", team="frontline",
                                          department="customer_service", request_type="repair", language="zh-CN",
                                          channel="phone", at=T))
    assert held.team == "frontline"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest_asyncio.fixture
async def api(ts_env: WorkflowEnvironment, db_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient,
                                                                                               Archive, Issuer]]:
    archive = Archive(db_url)
    migrate.prepare(archive)
    seed(archive)
    issuer = issuer_from_env({"KEFU_DATA_DIR": str(tmp_path)})
    app = create_app(ts_env.client, archive, settings=Settings(), issuer=issuer)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu.test") as http:
            yield http, archive, issuer
    finally:
        archive.close()


async def test_each_role_lists_and_opens_only_what_it_may_and_each_read_is_logged(
        api: tuple[httpx.AsyncClient, Archive, Issuer]) -> None:
    http, archive, issuer = api
    for (sub, role), expected in SEES.items():
        headers = {"Authorization": f"Bearer {issuer.issue(sub, role, timedelta(minutes=5))}"}  # type: ignore[arg-type]
        listed = await http.get("/requests", headers=headers)
        assert listed.status_code == 200, listed.text
        rows: list[dict[str, Any]] = listed.json()
        assert {r["request_id"] for r in rows} == expected, (sub, role)
        in_clear = role in ("agent", "team_lead")
        for row in rows:
            assert (row["customer_phone"].startswith("1390000") and "*" not in row["customer_phone"]) == in_clear
            assert (row["description"] == "宽带断了") == in_clear
            if not in_clear:
                assert row["customer_name"] == "韩**"
        for rid in sorted(ALL):
            opened = await http.get(f"/requests/{rid}", headers=headers)
            assert opened.status_code == (200 if rid in expected else 404), (sub, rid, opened.text)
            if rid in expected:
                assert opened.json()["request"]["customer_name"] == "韩梅梅"
            else:
                assert "韩梅梅" not in opened.text and opened.json()["error"]["field"] == "request_id"
        trail = await http.get(f"/requests/{sorted(expected or {'r-own'})[0]}/audit", headers=headers)
        assert trail.status_code == (200 if expected else 404)

    log = access_log(archive, limit=1000)
    assert all(row["at"].tzinfo is not None for row in log)
    for (sub, role), expected in SEES.items():
        mine = [(row["request_id"], row["path"], row["fields"]) for row in log if row["actor_id"] == sub]
        assert all(row["actor_role"] == role for row in log if row["actor_id"] == sub)
        listed = {rid for rid, path, _ in mine if path == "GET /requests"}
        assert listed == (expected if role in ("agent", "team_lead") else set()), (sub, listed)
        assert {rid for rid, path, _ in mine if path == "GET /requests/{id}"} == expected
        assert {(path, fields) for _, path, fields in mine} <= {("GET /requests", "customer,description"),
                                                                ("GET /requests/{id}", "customer,description"),
                                                                ("GET /requests/{id}/audit", "audit")}


async def test_a_customer_token_lists_nothing(api: tuple[httpx.AsyncClient, Archive, Issuer]) -> None:
    http, archive, issuer = api
    headers = {"Authorization": f"Bearer {issuer.issue('C-1', 'customer', timedelta(minutes=5))}"}
    for path in ("/requests", "/requests/r-own", "/requests/r-own/audit", "/incidents"):
        answer = await http.get(path, headers=headers)
        assert answer.status_code == 403 and "link in their notice" in answer.json()["error"]["message"]
    assert access_log(archive) == []
