"""mTLS the way the compose stack runs it, without an engine: the certificates of deploy/make_secrets.py on a TLS
front (Python ssl, client certificate required, like the frontend's requireClientAuth) that forwards to a dev
server. kefu's own client (temporal_env.connect, the SDK's Rust core and rustls) connects with TEMPORAL_TLS_*; the
setup one-shot creates a namespace and registers the search attributes through it; a client without a certificate,
with another CA's certificate or checking another server name is refused."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, GetSystemInfoRequest
from temporalio.testing import WorkflowEnvironment

from infra import search, temporal_env
from tests.integration.conftest import dev_address
from tests.integration.deploy_scripts import load

pytestmark = pytest.mark.integration


make_secrets = load("make_secrets")
setup = load("register_search_attributes")


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    make_secrets.main(["--dir", str(folder), "--env-file", str(folder / ".env")])
    return folder / "tls"


class Front:
    """A TLS listener in front of a plaintext gRPC server; remembers the client certificates it accepted."""

    def __init__(self, tls: Path, upstream: str) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(tls / "frontend.pem", tls / "frontend.key")
        self.context.load_verify_locations(tls / "ca.pem")
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.set_alpn_protocols(["h2"])
        self.host, port = upstream.rsplit(":", 1)
        self.port = int(port)
        self.clients: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        self.clients.append(dict(pair[0] for pair in peer.get("subject", ()))["commonName"])
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest_asyncio.fixture
async def front(tls_dir: Path, dev_env: WorkflowEnvironment) -> AsyncIterator[tuple[Front, str]]:
    proxy = Front(tls_dir, dev_address(dev_env))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0, ssl=proxy.context)
    yield proxy, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 5)


def use_tls(monkeypatch: pytest.MonkeyPatch, tls: Path, address: str, client: str | None,
            server_name: str = "temporal", ca: Path | None = None) -> None:
    """The variables the compose file gives a kefu container."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("TEMPORAL_TLS_CA", str(ca or tls / "ca.pem"))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", server_name)
    for variable, suffix in (("TEMPORAL_TLS_CERT", "pem"), ("TEMPORAL_TLS_KEY", "key")):
        if client:
            monkeypatch.setenv(variable, str(tls / f"{client}.{suffix}"))
        else:
            monkeypatch.delenv(variable, raising=False)


async def test_kefu_client_over_mtls(front: tuple[Front, str], tls_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, address = front
    use_tls(monkeypatch, tls_dir, address, "worker")
    client = await asyncio.wait_for(temporal_env.connect(), 30)
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.server_version
    assert "kefu-worker" in proxy.clients


async def test_setup_creates_namespace_and_search_attributes(front: tuple[Front, str], tls_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, address = front
    namespace = f"kefu-setup-{uuid.uuid4().hex[:8]}"
    use_tls(monkeypatch, tls_dir, address, "admin")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", namespace)
    assert await setup.main(90, timedelta(days=3)) == 0
    assert f"namespace {namespace}: created (retention 3 days, 0:00:00)" in capsys.readouterr().out
    client = await temporal_env.connect()
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    assert described.config.workflow_execution_retention_ttl.ToTimedelta() == timedelta(days=3)
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    assert {key.name for key in search.ALL} <= set(listed.custom_attributes)
    assert await setup.main(30, timedelta(days=30)) == 0  # again: nothing to do, the retention stays
    assert f"namespace {namespace}: present; search attributes: all present" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["plaintext", "no client certificate", "another CA's certificate",
                                  "another server name"])
async def test_refused(front: tuple[Front, str], tls_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       case: str) -> None:
    proxy, address = front
    if case == "plaintext":
        use_tls(monkeypatch, tls_dir, address, None)
        for variable in ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_NAME"):
            monkeypatch.delenv(variable)
        assert temporal_env.tls_config() is False
    elif case == "no client certificate":
        use_tls(monkeypatch, tls_dir, address, None)
    elif case == "another CA's certificate":
        make_secrets.main(["--dir", str(tmp_path), "--env-file", str(tmp_path / ".env")])
        use_tls(monkeypatch, tmp_path / "tls", address, "worker", ca=tls_dir / "ca.pem")
    else:
        use_tls(monkeypatch, tls_dir, address, "worker", server_name="archive-db")
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await asyncio.wait_for(temporal_env.connect(), 60)
    assert proxy.clients == []  # the handshake failed: nothing reached the server

