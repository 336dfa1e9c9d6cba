"""Payload encryption end to end on the time-skipping server (SEEDS §10: encryption at rest, PII protection).

A client and worker with the AES-256-GCM codec drive whole requests; the raw history the server stores must not
contain the customers' names, phones or emails, and every payload except the (indexed, PII-free) search attributes
must be encrypted. The histories still replay with the codec, and search attributes and memo carry no PII.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from archive.store import Archive
from infra import temporal_env
from infra.codec import ENCODING, EncryptionCodec
from tests.histories.record import drive, workflow_id
from worker import build_worker
from workflows.service_request import ServiceRequestWorkflow

CUSTOMERS = {
    "happy_path": {"id": "C-1001", "name": "赵敏", "phone": "13955550123", "email": "zhao.min@example.com"},
    "rejection_extension": {"id": "C-1001", "name": "Alice Chen", "phone": "13800001111",
                            "email": "alice.chen@example.org"},
    "breach_escalation": {"id": "C-1001", "name": "欧阳锋", "phone": "+86 139 1234 9876"},
}


def pii_strings(customer: dict[str, str]) -> list[bytes]:
    values = [customer["name"], customer["phone"], customer["phone"].replace(" ", ""), customer.get("email")]
    return [v.encode() for v in values if v]


def walk_payloads(msg: Message, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Payload]]:
    """Every Payload inside a protobuf message, with the field path that leads to it."""
    if isinstance(msg, Payload):
        yield path, msg
        return
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        here = (*path, field.name)
        if field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    yield from walk_payloads(item, (*path, f"{field.name}[{key}]"))
        elif field.is_repeated:
            for item in value:
                yield from walk_payloads(item, here)
        else:
            yield from walk_payloads(value, here)


def history_payloads(history: WorkflowHistory) -> list[tuple[tuple[str, ...], Payload]]:
    return [found for event in history.events for found in walk_payloads(event)]


def leaks(history: WorkflowHistory, secrets_: list[bytes]) -> list[str]:
    """PII found in the raw history: in its JSON, or in any payload's bytes (JSON shows them base64-encoded)."""
    text = history.to_json().encode()
    found = [s.decode() for s in secrets_ if s in text]
    for path, payload in history_payloads(history):
        blob = payload.data + b"".join(payload.metadata.values())
        found += [f"{s.decode()} in {'.'.join(path)}" for s in secrets_ if s in blob]
    return found


@contextlib.asynccontextmanager
async def encrypted_worker(env: WorkflowEnvironment, archive: Archive, task_queue: str,
                           started: list[str]) -> AsyncIterator[Client]:
    """A client and worker that encrypt; afterwards any request left open is terminated (see running_worker)."""
    codec = EncryptionCodec([("test-key", secrets.token_bytes(32))])
    client = Client(**{**env.client.config(), "data_converter": temporal_env.data_converter(codec)})
    try:
        async with build_worker(client, archive, task_queue=task_queue):
            yield client
    finally:
        for wid in started:
            with contextlib.suppress(RPCError):
                await env.client.get_workflow_handle(wid).terminate("test finished")


def test_the_scan_finds_pii_in_an_unencrypted_history() -> None:
    """Control: the committed plaintext history of the happy path does show its customer's phone and name."""
    text = (Path(__file__).parent.parent / "histories" / "happy_path.json").read_text(encoding="utf-8")
    history = WorkflowHistory.from_json(workflow_id("happy_path"), text)
    assert leaks(history, ["王小明".encode(), b"13812345678"])


async def test_request_end_to_end_with_encryption_on(ts_env: WorkflowEnvironment, archive: Archive,
                                                     task_queue: str) -> None:
    rid = f"enc-{secrets.token_hex(4)}"
    started = [f"kefu-sr-{rid}"]
    customer = CUSTOMERS["happy_path"]
    async with encrypted_worker(ts_env, archive, task_queue, started) as client:
        handle = await drive(ts_env, client, task_queue, "happy_path", rid=rid, customer=customer)
        final = await handle.result()
        converter = client.data_converter
    assert final.stage == "completed" and final.outcome == "satisfied"

    history = await ts_env.client.get_workflow_handle(handle.id).fetch_history()  # raw, as the server stores it
    assert leaks(history, pii_strings(customer)) == []
    payloads = history_payloads(history)
    # not encrypted: search attributes (indexed by the server) and the SDK's own marker data: local-activity
    # bookkeeping (activity type, attempt, times; the results in the same markers are encrypted) and a patch
    # marker's patch id (e.g. "flush-once-per-task"), and the signed principal header (staff id, role, workflow id,
    # message name, payload digest: no customer data; the worker reads it before any decoding)
    plain = [".".join(path) for path, p in payloads if p.metadata.get("encoding") != ENCODING
             and "search_attributes" not in path and "details[data]" not in path and "details[patch-data]" not in path
             and "header.fields[kefu-principal]" not in ".".join(path)]
    assert plain == [], f"every payload but the search attributes is encrypted: {sorted(set(plain))}"
    assert sum(1 for _, p in payloads if p.metadata.get("encoding") == ENCODING) > 10

    # the encrypted history replays with the codec (the determinism gate works for encrypted runs too)
    result = await Replayer(workflows=[ServiceRequestWorkflow], data_converter=converter).replay_workflow(history)
    assert result.replay_failure is None


async def test_pii_scan_history_search_attributes_and_memo(ts_env: WorkflowEnvironment, archive: Archive,
                                                           task_queue: str) -> None:
    """Several request kinds, encrypted: no customer name, phone or email anywhere the server keeps."""
    runs = {name: f"pii-{name.replace('_', '-')}-{secrets.token_hex(3)}" for name in CUSTOMERS}
    started = [f"kefu-sr-{rid}" for rid in runs.values()]
    every_secret = [s for customer in CUSTOMERS.values() for s in pii_strings(customer)]
    async with encrypted_worker(ts_env, archive, task_queue, started) as client:
        for name, rid in runs.items():
            overrides = {"customer": CUSTOMERS[name]}
            if name == "breach_escalation":
                overrides["accepted_by"] = "agent-zhao"
            await drive(ts_env, client, task_queue, name, rid=rid, **overrides)
        found: list[str] = []
        for rid in runs.values():
            wid = f"kefu-sr-{rid}"
            found += leaks(await ts_env.client.get_workflow_handle(wid).fetch_history(), every_secret)
            # raw describe (the SDK's describe() cannot parse the test server's datetime search attributes)
            raw = await ts_env.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
                namespace=ts_env.client.namespace, execution=WorkflowExecution(workflow_id=wid)))
            indexed = dict(raw.workflow_execution_info.search_attributes.indexed_fields)
            assert "KefuStage" in indexed, "the scan sees the search attributes"
            metadata = raw.execution_config.user_metadata
            codec = client.data_converter.payload_codec
            assert codec is not None
            readable = [*indexed.values(), *await codec.decode(  # decrypted memo, summary, details
                [*raw.workflow_execution_info.memo.fields.values(), metadata.summary, metadata.details])]
            for payload in readable:
                found += [f"{s.decode()} in {wid} describe" for s in every_secret if s in payload.data]
    assert found == []
