"""What every `kefu` command shares: one-line errors and text-or-JSON output."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from infra import temporal_env
from infra.codec import CodecKeyError, codec_from_env, default_key_file
from models.errors import one_line
from policies.loader import NotText, decode_text


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


class Reported(Exception):
    """The command printed its own error lines (e.g. every problem of a policy pack): exit 2, print nothing more."""


def validation_message(exc: ValidationError) -> str:
    return one_line(exc)


def read_text(path: str, option: str | None = None) -> str:
    """The text of a file the user named (UTF-8, a BOM allowed). Unreadable or not UTF-8 is a one-line CliError
    naming the option and the file, never the content: `--file: x.json is not UTF-8 text (byte 0xff at offset 12)`."""
    where = f"{option}: " if option else ""
    try:
        return decode_text(Path(path).read_bytes())
    except OSError as exc:
        raise CliError(f"{where}cannot read {path}: {exc.strerror}") from exc
    except NotText as exc:
        raise CliError(f"{where}{path} {exc}") from exc


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], raw: Any) -> M:
    """Validate user input into `model`; a problem becomes a one-line CliError naming the field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CliError(validation_message(exc)) from exc


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if as_json or text is None:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(text(data))


R = TypeVar("R", bound=BaseModel)


async def run_update(handle: WorkflowHandle, name: str, payload: BaseModel, result_type: type[R]) -> R:
    """Execute an update; a validator's refusal becomes a one-line CliError."""
    try:
        return await handle.execute_update(name, payload, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        raise CliError(f"refused: {getattr(cause, 'message', None) or cause}") from exc


# --- connecting to Temporal ------------------------------------------------------------------------------------------
CONNECT_TIMEOUT = 10.0  # a server that accepts TCP but never answers would otherwise hold the CLI forever
START = "start it with `make run` or set TEMPORAL_ADDRESS"
TLS = "check TEMPORAL_TLS_CA, TEMPORAL_TLS_SERVER_NAME (docs/deployment.md)"
PLAIN_OR_TLS = "set TEMPORAL_TLS=true for a TLS frontend, or check TEMPORAL_ADDRESS"
# (words in the SDK's nested error text, what happened, how to fix it); first match wins
CONNECT_FAILURES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("connectionrefused", "connection refused"), "connection refused", START),
    (("dns error", "failed to lookup address"), "unknown host", START),
    (("invalidcertificate",), "the server's TLS certificate does not match", TLS),
    (("tls handshake", "invalidcontenttype", "invalidmessage", "corrupt message"),
     "TLS handshake failed (a plain, non-TLS server?)", "unset TEMPORAL_TLS or check TEMPORAL_TLS_*"),
    (("connectionreset", "connection reset", "connection closed", "broken pipe"),
     "the connection was closed during the handshake", PLAIN_OR_TLS),
)


def connection_problem(exc: BaseException, timeout: float = CONNECT_TIMEOUT) -> tuple[str, str]:
    """(what went wrong, how to fix it), each a few plain words: the SDK's message is a nested Rust error that would
    otherwise be cut off mid-word."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:.0f} s", "check TEMPORAL_ADDRESS (and TEMPORAL_TLS for a TLS frontend)"
    text = str(exc)
    if isinstance(exc, ValueError):  # the SDK's own check of the address
        return f"not a host:port address ({text.removeprefix('invalid target URL: ')})", "set TEMPORAL_ADDRESS"
    lowered = text.lower()
    for needles, problem, hint in CONNECT_FAILURES:
        if any(needle in lowered for needle in needles):
            return problem, hint
    http = re.search(r"HTTP status code (\d+)", text)
    if http:
        return f"not a Temporal frontend (it answered HTTP {http.group(1)})", "check TEMPORAL_ADDRESS"
    quoted = re.findall(r'(?:message|error): "([^"]+)"', text)
    plain = quoted[-1] if quoted else text.removeprefix("Failed client connect: ").splitlines()[0]
    return _words(plain, 120), START


def _words(text: str, limit: int) -> str:
    """text cut at a word boundary, never mid-word."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def connect_failure(exc: BaseException, address: str, timeout: float = CONNECT_TIMEOUT) -> str:
    problem, hint = connection_problem(exc, timeout)
    return f"cannot reach Temporal at {address}: {problem}; {hint}"


async def connect(timeout: float | None = None) -> Client:
    """A client for TEMPORAL_ADDRESS; any failure is one complete CliError line naming the address and the fix."""
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    address = temporal_env.temporal_address()
    check_local_settings()
    try:
        return await asyncio.wait_for(temporal_env.connect(address), timeout)
    except (RuntimeError, ValueError, TimeoutError) as exc:
        raise CliError(connect_failure(exc, address, timeout)) from exc


def check_local_settings() -> None:
    """TLS files and payload keys load, or one line says which and why: their problems are not the server's."""
    try:
        temporal_env.tls_config()
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    try:
        codec_from_env()
    except CodecKeyError as exc:
        raise CliError(f"payload keys: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        key_file = os.environ.get("KEFU_CODEC_KEY_FILE", "").strip() or str(default_key_file())
        read_text(key_file, "KEFU_CODEC_KEY_FILE")  # raises the one-line reason
        raise CliError(f"KEFU_CODEC_KEY_FILE: cannot read {key_file}") from exc
