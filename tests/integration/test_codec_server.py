"""The codec server over HTTP (stdlib urllib): Temporal's JSON payload format, CORS, errors, /decode only unless
encode is allowed, the bearer token."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from infra.codec import ENCODING, CodecKeyError, EncryptionCodec, new_key_entry
from infra.codec_server import serve, token_from_env

pytestmark = pytest.mark.integration  # a real socket, no Temporal server

KEY = bytes(range(32))
ORIGIN = "http://localhost:8233"
TOKEN = "s3cret-token-for-the-codec-server"
ROOT = Path(__file__).resolve().parents[2]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@contextlib.contextmanager
def running(**options: Any) -> Iterator[str]:
    server, _ = serve(EncryptionCodec([("k1", KEY)]), "127.0.0.1", 0, ORIGIN, **options)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running(allow_encode=True) as url:
        yield url


def post(url: str, body: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=raw, method="POST",
                                     headers={"Content-Type": "application/json", "X-Namespace": "default",
                                              **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_encode_then_decode_round_trip(base_url: str) -> None:
    original = {"payloads": [{"metadata": {"encoding": b64(b"json/plain")},
                              "data": b64('{"name":"王小明"}'.encode())}]}
    status, headers, body = post(f"{base_url}/encode", original)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ORIGIN
    encoded = json.loads(body)
    [payload] = encoded["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == ENCODING
    assert base64.b64decode(payload["metadata"]["encryption-key-id"]) == b"k1"
    assert "王小明".encode() not in base64.b64decode(payload["data"])

    status, _, body = post(f"{base_url}/decode", encoded)
    assert status == 200 and json.loads(body) == original


def test_cors_preflight(base_url: str) -> None:
    request = urllib.request.Request(f"{base_url}/decode", method="OPTIONS",
                                     headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "x-namespace" in response.headers["Access-Control-Allow-Headers"].lower()


def test_errors(base_url: str) -> None:
    assert post(f"{base_url}/nope", {"payloads": []})[0] == 404
    assert post(f"{base_url}/decode", b"{not json")[0] == 400
    foreign = {"payloads": [{"metadata": {"encoding": b64(ENCODING), "encryption-key-id": b64(b"k9")},
                             "data": b64(bytes(40))}]}
    status, _, body = post(f"{base_url}/decode", foreign)
    assert status == 400 and b"CodecKeyError" in body
    assert post(f"{base_url}/decode", {})[:1] == (200,)  # no payloads: nothing to do


def sealed_body(text: bytes = b'"hello"') -> dict[str, Any]:
    [payload] = [EncryptionCodec([("k1", KEY)]).encrypt(Payload(metadata={"encoding": b"json/plain"}, data=text))]
    return {"payloads": [{"metadata": {k: b64(v) for k, v in payload.metadata.items()}, "data": b64(payload.data)}]}


def test_decode_only_by_default() -> None:
    """An open /encode would let anyone who reaches the server produce payloads the workers accept."""
    with running() as url:
        status, _, body = post(f"{url}/encode", {"payloads": [{"metadata": {"encoding": b64(b"json/plain")},
                                                              "data": b64(b'"x"')}]})
        assert status == 404 and b"--allow-encode" in body
        status, _, body = post(f"{url}/decode", sealed_body())
        assert status == 200 and base64.b64decode(json.loads(body)["payloads"][0]["data"]) == b'"hello"'
        plain = {"payloads": [{"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'"old run"')}]}
        assert json.loads(post(f"{url}/decode", plain)[2]) == plain  # shown as it is: a viewer does not refuse


def test_bearer_token_is_required_when_configured() -> None:
    with running(token=TOKEN, allow_encode=True) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": f"Bearer {TOKEN}x"}):
            status, answer, body = post(f"{url}/decode", sealed_body(), **headers)
            assert status == 401 and answer["WWW-Authenticate"].startswith("Bearer") and body == b"", headers
            assert answer["Access-Control-Allow-Origin"] == ORIGIN  # the UI can tell the user why
            assert post(f"{url}/encode", sealed_body(), **headers)[0] == 401
        status, _, body = post(f"{url}/decode", sealed_body(), Authorization=f"Bearer {TOKEN}")
        assert status == 200 and base64.b64decode(json.loads(body)["payloads"][0]["data"]) == b'"hello"'
        preflight = urllib.request.Request(f"{url}/decode", method="OPTIONS", headers={"Origin": ORIGIN})
        with urllib.request.urlopen(preflight, timeout=30) as response:  # browsers send no credentials here
            assert response.status == 204


def test_cors_allows_only_the_configured_origin(base_url: str) -> None:
    status, headers, _ = post(f"{base_url}/decode", sealed_body(), Origin="https://evil.example")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ORIGIN


def test_token_from_environment_or_an_owner_only_file(tmp_path: Path) -> None:
    assert token_from_env(environ={}) is None
    assert token_from_env(environ={"KEFU_CODEC_SERVER_TOKEN": f" {TOKEN}\n"}) == TOKEN
    token_file = tmp_path / "codec.token"
    token_file.write_text(f"{TOKEN}\n")
    token_file.chmod(0o644)
    with pytest.raises(CodecKeyError, match=r"mode 0644 .* run `chmod 600 .*codec.token`"):
        token_from_env(str(token_file), environ={})
    token_file.chmod(0o600)
    assert token_from_env(environ={"KEFU_CODEC_SERVER_TOKEN_FILE": str(token_file)}) == TOKEN
    with pytest.raises(CodecKeyError, match="16"):
        token_from_env(environ={"KEFU_CODEC_SERVER_TOKEN": "short"})


def test_the_command_requires_its_token_and_refuses_a_loose_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "codec.token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o640)
    env = {**os.environ, "KEFU_CODEC_KEYS": new_key_entry("k1"), "KEFU_CODEC_SERVER_TOKEN_FILE": str(token_file)}
    command = [sys.executable, "-m", "infra.codec_server", "--port", "0"]
    refused = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "chmod 600" in refused.stderr
    assert TOKEN not in refused.stderr
    token_file.chmod(0o600)
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()  # type: ignore[union-attr]
        assert "/decode only; bearer token required" in banner, banner
        url = banner.split()[3]
        assert post(f"{url}/decode", {"payloads": []})[0] == 401
        assert post(f"{url}/decode", {"payloads": []}, Authorization=f"Bearer {TOKEN}")[0] == 200
        assert post(f"{url}/encode", {"payloads": []}, Authorization=f"Bearer {TOKEN}")[0] == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)
