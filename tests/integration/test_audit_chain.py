"""`kefu audit verify` on SQLite and PostgreSQL (issue 14, 002 §2.4.3): it holds on the archive a real run leaves,
and names the request (or incident) and seq of every row edited, deleted or forged with SQL afterwards. Concurrent
writers of one request keep its chain one line long."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from archive import migrate
from archive.incidents import persist_incident
from archive.store import Archive
from models.incident import IncidentAuditEvent, IncidentBatch, IncidentStatus
from models.records import PersistBatch
from tests.conftest import running_worker
from tests.integration.test_archive import event, projection, registration
from tests.workflow.helpers import act, confirm, start, survey

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def verify(url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
           ) -> tuple[int, list[str]]:
    """`kefu audit verify ARGS` against the archive at url: exit code and stdout lines."""
    from cli import main as starter

    monkeypatch.setenv("DATABASE_URL", url)
    capsys.readouterr()  # the worker's and the archive's log lines so far
    code = starter.main(["audit", "verify", *args])
    out, err = capsys.readouterr()
    assert code in (0, 2) and not err, err
    return code, out.strip().splitlines()


def sql(store: Archive, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def incident(store: Archive, incident_id: str = "INC-1", lines: int = 3) -> None:
    """An incident's chain, written as the IncidentWorkflow's persist_incident writes it (one batch a line)."""
    status = IncidentStatus(incident_id=incident_id, policy="finance", level=2, title="手机银行登录故障",
                            category=None, lead="lead-zhao", stage="open", auto=False, declared_at=T0)
    for seq in range(lines):
        line = IncidentAuditEvent(incident_id=incident_id, seq=seq, at=T0 + timedelta(minutes=seq),
                                  actor_id="sup-wang", actor_role="supervisor", action="progress",
                                  detail={"text": f"update {seq}"})
        batch = IncidentBatch(projection=status, updated_at=T0 + timedelta(minutes=seq), events=[line])
        persist_incident(store, batch)
        persist_incident(store, batch)  # a retry adds nothing


async def test_verify_holds_on_a_real_run_and_names_every_tampered_row(
        db_url: str, ts_env: WorkflowEnvironment, task_queue: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store = Archive(db_url)
    migrate.prepare(store)
    async with running_worker(ts_env, store, task_queue):
        handle, _ = await start(ts_env.client, task_queue)
        await act(handle, "respond", message="您好，我这边处理")
        await act(handle, "resolve", summary="账单明细已发送")
        await confirm(handle)
        await survey(ts_env, handle, score=96)
        final = await handle.result()
    incident(store)
    request_id = final.request_id
    seqs = [e["seq"] for e in store.audit_trail(request_id)]
    assert seqs == list(range(len(seqs))) and len(seqs) > 8

    code, out = verify(db_url, monkeypatch, capsys, "--all")
    assert code == 0 and out == [f"2 chain(s) hold: {len(seqs) + 3} line(s), 0 superseded"], out
    assert verify(db_url, monkeypatch, capsys, request_id)[0] == 0
    code, out = verify(db_url, monkeypatch, capsys, "--all", "--json")
    report = json.loads("\n".join(out))
    assert report["ok"] and report["problems"] == [] and {c["log"] for c in report["chains"]} == {"request",
                                                                                                  "incident"}
    assert all(len(chain["head"]) == 64 for chain in report["chains"])  # to anchor outside the archive

    sql(store, "UPDATE audit_events SET detail = '{\"text\": \"edited\"}' WHERE request_id = :r AND seq = 2",
        r=request_id)
    code, out = verify(db_url, monkeypatch, capsys, request_id)
    assert code == 2 and out[0] == (f"request {request_id} seq 2: changed: its content does not match its hash "
                                    "(edited, or written with a forged hash)"), out
    assert out[-1].startswith("1 problem(s) in 1 of 1 chain(s)")

    sql(store, "DELETE FROM audit_events WHERE request_id = :r AND seq = 5", r=request_id)
    code, out = verify(db_url, monkeypatch, capsys, request_id)
    assert code == 2 and out[1] == f"request {request_id} seq 5: removed: no line has this seq", out

    with store.engine.connect() as conn:
        head = conn.execute(text("SELECT hash FROM audit_events WHERE request_id = :r ORDER BY id DESC LIMIT 1"),
                            {"r": request_id}).scalar()
    sql(store, "INSERT INTO audit_events (request_id, seq, at, actor_id, actor_role, action, stage, detail, "
        "rejected, revision, prev_hash, hash) VALUES (:r, :s, :at, 'intruder', 'agent', 'note', 'completed', '{}', "
        "false, 0, :prev, :forged)", r=request_id, s=len(seqs), at="2026-11-22 00:00:00", prev=head,
        forged="f" * 64)
    code, out = verify(db_url, monkeypatch, capsys, request_id)
    assert code == 2 and out[2] == (f"request {request_id} seq {len(seqs)}: inserted: after the chain's recorded "
                                    "head: kefu did not write it"), out

    sql(store, "UPDATE incident_events SET actor_id = 'someone-else' WHERE incident_id = 'INC-1' AND seq = 1")
    sql(store, "DELETE FROM incident_events WHERE incident_id = 'INC-1' AND seq = 2")
    code, out = verify(db_url, monkeypatch, capsys, "--all")
    assert code == 2 and out[3:5] == [  # after the request's three
        "incident INC-1 seq 1: changed: its content does not match its hash (edited, or written with a forged hash)",
        "incident INC-1 seq 2: removed: the chain's head records 3 lines and 2 remain: lines at its end were removed"]
    assert out[-1].startswith("5 problem(s) in 2 of 2 chain(s)"), out
    store.close()


def test_verify_refuses_an_unknown_id_and_wants_id_or_all(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main as starter

    Archive(sqlite_url).create_schema()
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    for args, error in ((["R-404"], "kefu audit: ID: no audit trail of a request or incident R-404 in the archive"),
                        ([], "kefu audit: give a request or incident ID, or --all"),
                        (["R-1", "--all"], "kefu audit: give a request or incident ID, or --all")):
        assert starter.main(["audit", "verify", *args]) == 2
        assert capsys.readouterr().err == error + "\n"


def test_concurrent_writers_keep_one_chain(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Workers persisting the same request at once (each a different seq) queue on the request row's lock, so
    each reads the head the previous one left: no fork, no lost head."""
    store = Archive(db_url)
    store.create_schema()
    store.register(registration())
    batches = [PersistBatch(projection=projection(store, minutes=seq), events=[event(seq)]) for seq in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(store.persist, batches))
    incident(store, "INC-2", lines=1)
    code, out = verify(db_url, monkeypatch, capsys, "--all")
    assert code == 0 and out == ["2 chain(s) hold: 13 line(s), 0 superseded"], out
    store.close()


def test_superseded_lines_are_chained_and_counted(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    store = Archive(db_url)
    store.create_schema()
    store.register(registration())
    store.persist(PersistBatch(projection=projection(store, minutes=1), events=[event(0, action="a"), event(1)]))
    store.persist(PersistBatch(projection=projection(store, minutes=2), events=[event(0, action="b"), event(1),
                                                                              event(2)]))
    code, out = verify(db_url, monkeypatch, capsys, "R-1")
    assert code == 0 and out == ["1 chain(s) hold: 4 line(s), 1 superseded"], out
    sql(store, "DELETE FROM audit_events WHERE request_id = 'R-1' AND seq = 0 AND revision = 0")
    code, out = verify(db_url, monkeypatch, capsys, "R-1")
    assert code == 2 and out[0] == "request R-1 seq 0: removed: no line has this revision"
    store.close()
