"""Codec server for the Temporal Web UI and CLI: decodes (and encodes) kefu's encrypted payloads for people allowed
to read them, so the server never holds the keys.

    KEFU_CODEC_KEYS=... .venv/bin/python -m infra.codec_server [--host 127.0.0.1] [--port 8081] [--origin URL]

Then in the Web UI (http://localhost:8233) set Data Encoder → codec server endpoint http://127.0.0.1:8081, or
`temporal workflow show --codec-endpoint http://127.0.0.1:8081 ...`.

Endpoints (Temporal's codec server protocol): POST /encode and POST /decode with body
`{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`, answered in the same format. CORS
headers allow the UI's origin (KEFU_CODEC_CORS_ORIGIN or --origin; default http://localhost:8233). Anyone who
reaches this server can read the payloads: bind it to localhost or put it behind the same authentication as the UI
(docs/security.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from infra.codec import EncryptionCodec, codec_from_env

DEFAULT_ORIGIN = "http://localhost:8233"
MAX_BODY = 8 * 1024 * 1024


def make_handler(codec: PayloadCodec, origin: str = DEFAULT_ORIGIN) -> type[BaseHTTPRequestHandler]:
    # a viewer shows unencrypted payloads (older runs, SDK markers) as they are instead of refusing them
    viewer = codec.with_plaintext_allowed() if isinstance(codec, EncryptionCodec) else codec

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

        def do_OPTIONS(self) -> None:
            self._reply(204)

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path not in ("/encode", "/decode"):
                self._reply(404, b"not found\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, b"payloads too large\n", "text/plain")
                return
            try:
                payloads = json_format.Parse(self.rfile.read(length) or b"{}", Payloads())
                work = viewer.encode if path == "/encode" else viewer.decode
                result = asyncio.run(work(list(payloads.payloads)))
            except json_format.ParseError as exc:
                self._reply(400, f"bad request: {exc}\n".encode(), "text/plain")
                return
            except Exception as exc:  # wrong key, tampered ciphertext: say so without details of the payload
                self._reply(400, f"cannot {path[1:]}: {type(exc).__name__}\n".encode(), "text/plain")
                return
            body = json_format.MessageToJson(Payloads(payloads=result), indent=None)
            self._reply(200, body.encode())

        def log_message(self, format: str, *args: object) -> None:  # no request lines on stderr by default
            if os.environ.get("KEFU_CODEC_SERVER_LOG"):
                super().log_message(format, *args)

    return CodecHandler


def serve(codec: PayloadCodec, host: str = "127.0.0.1", port: int = 0,
          origin: str = DEFAULT_ORIGIN) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the server in a daemon thread (port 0 picks a free one: `server.server_address[1]`).
    Stop it with `server.shutdown(); server.server_close()`."""
    server = ThreadingHTTPServer((host, port), make_handler(codec, origin))
    thread = threading.Thread(target=server.serve_forever, name="kefu-codec-server", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--origin", default=os.environ.get("KEFU_CODEC_CORS_ORIGIN", DEFAULT_ORIGIN))
    args = parser.parse_args(argv)
    codec = codec_from_env()
    if codec is None:
        print("no keys: set KEFU_CODEC_KEYS or KEFU_CODEC_KEY_FILE (see codec.py)", file=sys.stderr)
        return 2
    server, thread = serve(codec, args.host, args.port, args.origin)
    print(f"codec server on http://{args.host}:{server.server_address[1]} (keys {', '.join(codec.key_ids)}; "
          f"CORS origin {args.origin})")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
