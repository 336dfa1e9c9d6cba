"""Codec server for the Temporal Web UI and CLI: decodes kefu's encrypted payloads for people allowed to read them,
so the Temporal server never holds the keys.

    KEFU_CODEC_KEYS=... .venv/bin/python -m infra.codec_server [--host 127.0.0.1] [--port 8081] [--origin URL]
        [--token-file FILE] [--allow-encode]

Then in the Web UI (http://localhost:8233) set Data Encoder → codec server endpoint http://127.0.0.1:8081, or
`temporal workflow show --codec-endpoint http://127.0.0.1:8081 [--codec-auth "Bearer TOKEN"] ...`.

Endpoints (Temporal's codec server protocol): POST /decode with body
`{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`, answered in the same format;
unencrypted payloads come back unchanged. POST /encode only with --allow-encode (tooling that starts or signals
runs): an open /encode lets anyone who reaches it write payloads the workers accept. With a token
(KEFU_CODEC_SERVER_TOKEN, or KEFU_CODEC_SERVER_TOKEN_FILE / --token-file, an owner-only file) every POST needs
`Authorization: Bearer <token>`. CORS headers allow the UI's origin only (KEFU_CODEC_CORS_ORIGIN or --origin; default
http://localhost:8233). Anyone who reaches this server (with the token) can read the payloads: bind it to localhost or
put it behind the same authentication as the UI (docs/security.md).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import os
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from infra.codec import CodecKeyError, EncryptionCodec, codec_from_env, read_secret_file

DEFAULT_ORIGIN = "http://localhost:8233"
MAX_BODY = 8 * 1024 * 1024
MIN_TOKEN = 16  # characters: shorter tokens are guessable


def token_from_env(token_file: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token: token_file, else KEFU_CODEC_SERVER_TOKEN_FILE, else KEFU_CODEC_SERVER_TOKEN; None when
    none is set. CodecKeyError (one line) for a file group or others may read, or a token that is too short."""
    env = os.environ if environ is None else environ
    path = token_file or env.get("KEFU_CODEC_SERVER_TOKEN_FILE", "").strip()
    label = "KEFU_CODEC_SERVER_TOKEN_FILE" if path else "KEFU_CODEC_SERVER_TOKEN"
    token = (read_secret_file(Path(path), "token file") if path else env.get("KEFU_CODEC_SERVER_TOKEN", "")).strip()
    if not token and not path:
        return None
    if len(token) < MIN_TOKEN or any(c.isspace() for c in token):
        raise CodecKeyError(f"{label}: the token needs {MIN_TOKEN}+ characters without spaces "
                            f"(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def make_handler(codec: PayloadCodec, origin: str = DEFAULT_ORIGIN, token: str | None = None,
                 allow_encode: bool = False) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}".encode() if token else None
    # a viewer shows unencrypted payloads (older runs, SDK markers) as they are instead of refusing them
    viewer = codec.with_plaintext_allowed() if isinstance(codec, EncryptionCodec) else codec
    endpoints = ("/encode", "/decode") if allow_encode else ("/decode",)

    class CodecHandler(BaseHTTPRequestHandler):
        server_version = "kefu-codec/1"

        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Vary", "Origin")

        def _reply(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
            self.send_response(status)
            self._cors()
            if body:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_OPTIONS(self) -> None:  # CORS preflight: browsers send it without credentials
            self._reply(204)

        def _authorized(self) -> bool:
            if expected is None:
                return True
            given = self.headers.get("Authorization", "").strip().encode()
            return hmac.compare_digest(given, expected)  # constant time: the token does not leak by timing

        def _fail(self, status: int, text: str) -> None:
            self.close_connection = True
            self._reply(status, f"{text}\n".encode(), "text/plain")

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._fail(400, "bad Content-Length")
                return
            if length > MAX_BODY:
                self._fail(413, "payloads too large")
                return
            raw = self.rfile.read(length)  # read before answering, so the client sees the answer, not a reset
            if not self._authorized():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Bearer realm="kefu-codec"')
                self._cors()
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = self.path.split("?", 1)[0].rstrip("/")
            if path not in endpoints:
                self._fail(404, "encode is off: start the codec server with --allow-encode" if path == "/encode"
                           else "not found")
                return
            try:
                payloads = json_format.Parse(raw or b"{}", Payloads())
                work = viewer.encode if path == "/encode" else viewer.decode
                result = asyncio.run(work(list(payloads.payloads)))
            except json_format.ParseError:  # its message may quote the body
                self._fail(400, "bad request: not Temporal's payloads JSON")
                return
            except Exception as exc:  # wrong key, tampered ciphertext: say so without details of the payload
                self._fail(400, f"cannot {path[1:]}: {type(exc).__name__}")
                return
            body = json_format.MessageToJson(Payloads(payloads=result), indent=None)
            self._reply(200, body.encode())

        def log_message(self, format: str, *args: object) -> None:  # no request lines on stderr by default
            if os.environ.get("KEFU_CODEC_SERVER_LOG"):
                super().log_message(format, *args)

    return CodecHandler


def serve(codec: PayloadCodec, host: str = "127.0.0.1", port: int = 0, origin: str = DEFAULT_ORIGIN,
          token: str | None = None, allow_encode: bool = False) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the server in a daemon thread (port 0 picks a free one: `server.server_address[1]`).
    Stop it with `server.shutdown(); server.server_close()`."""
    server = ThreadingHTTPServer((host, port), make_handler(codec, origin, token, allow_encode))
    thread = threading.Thread(target=server.serve_forever, name="kefu-codec-server", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--origin", default=os.environ.get("KEFU_CODEC_CORS_ORIGIN", DEFAULT_ORIGIN))
    parser.add_argument("--token-file", help="owner-only file holding the bearer token every request must carry "
                                             "(or KEFU_CODEC_SERVER_TOKEN_FILE / KEFU_CODEC_SERVER_TOKEN)")
    parser.add_argument("--allow-encode", action="store_true",
                        help="also serve POST /encode (tooling only: it lets callers write accepted payloads)")
    args = parser.parse_args(argv)
    try:
        codec = codec_from_env()
        token = token_from_env(args.token_file)
    except CodecKeyError as exc:
        print(f"codec server: {exc}", file=sys.stderr)
        return 2
    if codec is None:
        print("no keys: set KEFU_CODEC_KEYS or KEFU_CODEC_KEY_FILE (see codec.py)", file=sys.stderr)
        return 2
    if token is None and not is_loopback(args.host):
        print(f"warning: listening on {args.host} without a token: anyone who reaches it reads every payload "
              f"(set KEFU_CODEC_SERVER_TOKEN_FILE, or put it behind the UI's SSO; docs/security.md)", file=sys.stderr)
    server, thread = serve(codec, args.host, args.port, args.origin, token, args.allow_encode)
    print(f"codec server on http://{args.host}:{server.server_address[1]} (keys {', '.join(codec.key_ids)}; "
          f"{'/decode and /encode' if args.allow_encode else '/decode only'}; "
          f"{'bearer token required' if token else 'no token'}; CORS origin {args.origin})", flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
