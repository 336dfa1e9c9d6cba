"""The codec server over HTTP (stdlib urllib): Temporal's JSON payload format, CORS, errors."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from infra.codec import ENCODING, EncryptionCodec
from infra.codec_server import serve

pytestmark = pytest.mark.integration  # a real socket, no Temporal server

KEY = bytes(range(32))
ORIGIN = "http://localhost:8233"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server, _ = serve(EncryptionCodec([("k1", KEY)]), "127.0.0.1", 0, ORIGIN)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def post(url: str, body: Any) -> tuple[int, dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=raw, method="POST",
                                     headers={"Content-Type": "application/json", "X-Namespace": "default"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
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
    with urllib.request.urlopen(request, timeout=5) as response:
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
