"""`kefu serve`: the HTTP API (api/, docs/api.md) in the foreground, against TEMPORAL_ADDRESS and DATABASE_URL.

    kefu serve [--host 127.0.0.1] [--port 8000]      port default KEFU_API_PORT, else 8000; Ctrl-C stops
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from cli.common import CliError, connect


def add_parser(cmd: Callable[[str, str], argparse.ArgumentParser]) -> None:
    s = cmd("serve", "the HTTP API (OpenAPI at /docs): requests, customer links, incidents, agents, reports")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="default KEFU_API_PORT, else 8000")


async def run(args: argparse.Namespace) -> None:
    from api.app import create_app  # FastAPI loads only for this command
    from api.server import bind, server
    from api.settings import api_port
    from archive import migrate
    from archive.store import Archive

    port = args.port or api_port()
    try:
        sock = bind(args.host, port)
    except OSError as exc:
        raise CliError(f"port {port} (HTTP API) is taken or not ours ({exc.strerror}); set KEFU_API_PORT or --port "
                       "to a free port") from None
    store = Archive()
    migrate.prepare(store)  # at the migrations' head, as the worker leaves it
    app = create_app(await connect(), store)
    print(f"kefu API on http://{args.host}:{port} (OpenAPI at /docs); Ctrl-C stops", flush=True)
    await server(app).serve(sockets=[sock])

