"""The UI gateway (deploy/ui-gateway, nginx) run for real when nginx is installed: the compose file's config with the
containers' names swapped for local ports. The browser's codec calls reach the real codec server (token required,
key and token from deploy/make_secrets.py) only through the gateway, which adds the token; with KEFU_UI_AUTH=sso
nothing passes before oauth2-proxy (a stand-in here) says the person is signed in."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from infra.codec import EncryptionCodec, load_keys
from tests.integration.deploy_scripts import load

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                 reason="nginx not installed (apt-get install nginx-light)")]
ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "deploy" / "ui-gateway"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SIGNED_IN = "_oauth2_proxy=signed-in"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stub(http.server.BaseHTTPRequestHandler):
    """Stands in for the Web UI server (any path: 200 with the path) and oauth2-proxy (/oauth2/auth: 202 with the
    sign-in cookie, else 401; /oauth2/sign_in: a page)."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/oauth2/auth":
            self._send(202 if SIGNED_IN in self.headers.get("Cookie", "") else 401)
        elif self.path.startswith("/oauth2/sign_in"):
            self._send(200, b"sign in")
        else:
            self._send(200, f"ui {self.path}".encode())


@contextlib.contextmanager
def stub() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    load("make_secrets").main(["--dir", str(folder), "--env-file", str(folder / ".env")])
    return folder


@pytest.fixture(scope="module")
def codec_port(secrets_dir: Path) -> Iterator[int]:
    """The codec server as the compose file starts it (token file, key file)."""
    port = free_port()
    env = {**os.environ, "KEFU_CODEC_KEY_FILE": str(secrets_dir / "codec.keys"),
           "KEFU_CODEC_SERVER_TOKEN_FILE": str(secrets_dir / "codec-server.token"),
           "KEFU_CODEC_CORS_ORIGIN": "http://localhost:8080"}
    process = subprocess.Popen([sys.executable, "-m", "infra.codec_server", "--host", "127.0.0.1", "--port",
                                str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def gateway(auth: str, secrets_dir: Path, codec_port: int, tmp_path: Path) -> Iterator[str]:
    """nginx with deploy/ui-gateway/gateway.conf and auth/<auth>, upstreams on local ports."""
    with stub() as stub_port:
        port = free_port()
        conf = (GATEWAY / "gateway.conf").read_text()
        for old, new in (("listen 8080;", f"listen 127.0.0.1:{port};"),
                         ("http://codec-server:8081", f"http://127.0.0.1:{codec_port}"),
                         ("http://temporal-ui:8080", f"http://127.0.0.1:{stub_port}"),
                         ("/etc/nginx/kefu/auth", str(tmp_path / "auth")),
                         ("/run/secrets/ui_gateway_codec_auth", str(secrets_dir / "codec-proxy-auth.conf"))):
            assert old in conf, old
            conf = conf.replace(old, new)
        (tmp_path / "auth").mkdir()
        for part in ("server.conf", "location.conf"):
            text = (GATEWAY / "auth" / auth / part).read_text()
            (tmp_path / "auth" / part).write_text(text.replace("http://oauth2-proxy:4180",
                                                               f"http://127.0.0.1:{stub_port}"))
        (tmp_path / "gateway.conf").write_text(conf)
        temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        (tmp_path / "nginx.conf").write_text(
            f"daemon off;\npid {tmp_path / 'nginx.pid'};\nerror_log stderr warn;\nevents {{}}\nhttp {{\n"
            f"access_log off;\nclient_body_temp_path {temp['body']};\nproxy_temp_path {temp['proxy']};\n"
            f"fastcgi_temp_path {temp['fastcgi']};\nuwsgi_temp_path {temp['uwsgi']};\nscgi_temp_path {temp['scgi']};\n"
            f"include {tmp_path / 'gateway.conf'};\n}}\n")
        process = subprocess.Popen([NGINX, "-e", "stderr", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(port, process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def call(url: str, body: Any = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def sealed(secrets_dir: Path, text: bytes) -> dict[str, Any]:
    codec = EncryptionCodec(load_keys({"KEFU_CODEC_KEY_FILE": str(secrets_dir / "codec.keys")}))
    payload = codec.encrypt(Payload(metadata={"encoding": b"json/plain"}, data=text))
    return {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
                          "data": base64.b64encode(payload.data).decode()}]}


def decoded(body: bytes) -> bytes:
    return base64.b64decode(json.loads(body)["payloads"][0]["data"])


def test_codec_server_alone_wants_its_token(secrets_dir: Path, codec_port: int) -> None:
    status, _, _ = call(f"http://127.0.0.1:{codec_port}/decode", sealed(secrets_dir, b'"x"'))
    assert status == 401


def test_local_gateway(secrets_dir: Path, codec_port: int, tmp_path: Path) -> None:
    with gateway("local", secrets_dir, codec_port, tmp_path) as url:
        status, _, body = call(f"{url}/namespaces/default/workflows")
        assert status == 200 and body == b"ui /namespaces/default/workflows"
        status, _, body = call(f"{url}/codec/decode", sealed(secrets_dir, "王小明".encode()))
        assert status == 200 and decoded(body) == "王小明".encode()
        # whatever the browser sends, the gateway's token goes upstream
        status, _, body = call(f"{url}/codec/decode", sealed(secrets_dir, b'"y"'), Authorization="Bearer wrong")
        assert status == 200 and decoded(body) == b'"y"'
        assert call(f"{url}/codec/decode")[0] == 403  # POST (and the CORS preflight) only
        assert call(f"{url}/codec/encode", sealed(secrets_dir, b'"z"'))[0] == 404  # /decode only


def test_sso_gateway(secrets_dir: Path, codec_port: int, tmp_path: Path) -> None:
    with gateway("sso", secrets_dir, codec_port, tmp_path) as url:
        status, headers, _ = call(f"{url}/namespaces/default/workflows")
        assert status == 302 and "/oauth2/sign_in?rd=" in headers["Location"]
        status, headers, _ = call(f"{url}/codec/decode", sealed(secrets_dir, b'"x"'))
        assert status == 302  # not signed in: no payload is decoded
        assert call(f"{url}/oauth2/sign_in")[2] == b"sign in"
        assert call(f"{url}/oauth2/auth")[0] == 404  # the check itself is internal
        status, _, body = call(f"{url}/namespaces/default/workflows", Cookie=SIGNED_IN)
        assert status == 200 and body == b"ui /namespaces/default/workflows"
        status, _, body = call(f"{url}/codec/decode", sealed(secrets_dir, b'"x"'), Cookie=SIGNED_IN)
        assert status == 200 and decoded(body) == b'"x"'
