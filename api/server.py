"""Serving the API with uvicorn: `kefu serve` in the foreground, or beside the worker (`make run`,
worker.py --dev --api). The socket is bound first, so a taken port is one line from the caller, never uvicorn's
traceback. The access log is off: link tokens travel in URL paths (/c/{token}), and paths name request ids."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import FastAPI


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (OSError when taken)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def server(app: FastAPI, embedded: bool = False) -> uvicorn.Server:
    config = uvicorn.Config(app, access_log=False, log_level="warning", lifespan="on")
    return _Embedded(config) if embedded else uvicorn.Server(config)


class _Embedded(uvicorn.Server):
    """Leaves signals to the process it runs in (the worker stops on its own SIGINT and SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    """The API on `sock` in this event loop until the block ends."""
    embedded = server(app, embedded=True)
    task = asyncio.create_task(embedded.serve(sockets=[sock]))
    while not embedded.started and not task.done():
        await asyncio.sleep(0.05)
    if task.done():
        task.result()  # its start-up failed: raise why
    try:
        yield
    finally:
        embedded.should_exit = True
        await task
        sock.close()
