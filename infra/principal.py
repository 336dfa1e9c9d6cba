"""Verified identity on every message (issue 14; SEEDS §10 least privilege, 000 §6.3 who did what).

Who acts is not what a message says but what a trusted signer vouches for. A signer (the HTTP API, the CLI, the
demo, the worker itself) attaches a **principal** to each update and signal as Temporal header `kefu-principal`:

    base64url(JSON claims) "." base64url(Ed25519 signature over the first part)
    claims: sub, role, wf (workflow id), msg (update/signal name), dig (SHA-256 of the canonical JSON payload),
            iat, exp (unix seconds), kid (signing key id), jti (random)

The worker (workflows/principals.py, an interceptor) verifies the signature with the trusted public keys, the
workflow id, the message name, the payload digest and the expiry (against workflow time), and refuses a message
whose principal is missing, forged, expired, meant for another request or another message, or does not match the
actor the payload names. Role `system` is accepted only from the worker's own key: it can never be claimed from
outside.

Keys (Ed25519, like the codec keys: `kid:base64` entries, owner-only files, rotation by adding a key first):
- KEFU_PRINCIPAL_KEY_FILE: this process's signing key; default .data/principal.key, created owner-only on first
  use, so `make run`, the CLI and the demo on one machine share it (the embedded default).
- KEFU_PRINCIPAL_TRUSTED: public keys the worker accepts besides its own, `kid:base64[,kid:base64…]` (the API's
  key in production); their holders may sign any role but `system`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import temporalio.client
import temporalio.converter
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue

from infra.codec import CodecKeyError, read_secret_file
from infra.private_files import private_dir
from models.actions import Role

HEADER = "kefu-principal"
TTL = timedelta(minutes=5)  # a header is good for one call; retries of the same call re-sign
SKEW = timedelta(minutes=2)  # signer clocks a little ahead of the workflow's


class PrincipalError(ValueError):
    """A principal that cannot be trusted; the message says why in one line, never the payload."""


class Principal(BaseModel):
    """Who acts: a subject (agent, supervisor, manager id; `customer` for a customer link) and a role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sub: str = Field(min_length=1, max_length=64)
    role: Role


SYSTEM = Principal(sub="kefu", role="system")


class Claims(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @property
    def principal(self) -> Principal:
        return Principal(sub=self.sub, role=self.role)

    sub: str
    role: Role
    wf: str
    msg: str
    dig: str
    iat: int
    exp: int
    kid: str
    jti: str


def message_models() -> dict[str, type[BaseModel]]:
    """Each update's and signal's payload model, by message name (both workflows)."""
    from models.actions import Act, Confirm, EscalateRequest, SurveyAnswer
    from models.incident import IncidentEvent, Link, Progress, Resolve, Review

    return {"act": Act, "confirm": Confirm, "survey": SurveyAnswer, "escalation": EscalateRequest,
            "escalate": EscalateRequest, "incident": IncidentEvent, "link": Link, "update": Progress,
            "resolve": Resolve, "review": Review}


def _plain(payload: Any) -> Any:
    """What the worker's handler receives: a raw payload decoded as the default converter decodes it."""
    if isinstance(payload, RawValue):
        try:
            return temporalio.converter.default().payload_converter.from_payload(payload.payload)
        except Exception:
            return payload.payload.data
    return payload


def digest(message: str, payload: Any) -> str:
    """SHA-256 of the payload as canonical JSON: validated into the message's model first when it can be (defaults
    filled in, so a sender's raw dict and the worker's decoded model agree), keys sorted."""
    payload = _plain(payload)
    model = message_models().get(message)
    if model is not None and not isinstance(payload, BaseModel):
        with contextlib.suppress(ValidationError, TypeError):
            payload = model.model_validate(payload)
    if isinstance(payload, BaseModel):
        jsonable = payload.model_dump(mode="json")
    else:
        try:
            jsonable = to_jsonable_python(payload)
        except PydanticSerializationError:
            jsonable = repr(payload)
    text = json.dumps(jsonable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Signer:
    key_id: str
    key: Ed25519PrivateKey

    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def sign(self, principal: Principal, workflow_id: str, message: str, payload: Any, now: datetime,
             ttl: timedelta = TTL) -> str:
        claims = Claims(sub=principal.sub, role=principal.role, wf=workflow_id, msg=message,
                        dig=digest(message, payload), iat=int(now.timestamp()),
                        exp=int((now + ttl).timestamp()), kid=self.key_id, jti=secrets.token_hex(8))
        body = _b64(claims.model_dump_json().encode("utf-8"))
        return f"{body}.{_b64(self.key.sign(body.encode('ascii')))}"


@dataclass(frozen=True)
class Verifier:
    """The public keys a worker trusts; `system_kids` may sign role `system` (the worker's own keys)."""

    keys: Mapping[str, Ed25519PublicKey]
    system_kids: frozenset[str] = field(default_factory=frozenset)

    def verify(self, token: str, workflow_id: str, message: str, payload: Any, fresh: bool) -> Claims:
        """The claims of a valid token. `fresh`: also within its lifetime by this machine's clock (an update's
        validator, which never replays); a signal replays, so it is checked by signature and single use only."""
        try:
            body, signature = token.split(".")
            claims = Claims.model_validate_json(_unb64(body))
        except (ValueError, ValidationError):
            raise PrincipalError("principal: malformed header") from None
        key = self.keys.get(claims.kid)
        if key is None:
            raise PrincipalError(f"principal: unknown signing key {claims.kid[:16]!r}")
        try:
            key.verify(_unb64(signature), body.encode("ascii"))
        except (InvalidSignature, ValueError):
            raise PrincipalError("principal: bad signature") from None
        if claims.role == "system" and claims.kid not in self.system_kids:
            raise PrincipalError("principal: role system can only be signed by the worker")
        if claims.wf != workflow_id:
            raise PrincipalError("principal: signed for another request")
        if claims.msg != message:
            raise PrincipalError(f"principal: signed for message {claims.msg!r}, not {message!r}")
        if claims.dig != digest(message, payload):
            raise PrincipalError("principal: signed for another payload")
        moment = time.time()
        if fresh and (claims.exp < moment or claims.iat > moment + SKEW.total_seconds()):
            raise PrincipalError("principal: expired or not yet valid")
        return claims

    @staticmethod
    def jti(token: str) -> str | None:
        """The single-use id of a token already verified (None when it does not parse)."""
        try:
            return Claims.model_validate_json(_unb64(token.split(".")[0])).jti
        except (ValueError, ValidationError):
            return None


# --- keys ------------------------------------------------------------------------------------------------------
def _parse_private(text: str, label: str) -> Signer:
    entries = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not entries or ":" not in entries[0]:
        raise CodecKeyError(f"{label}: expected a line `kid:base64` (an Ed25519 private key seed)")
    key_id, _, encoded = entries[0].partition(":")
    try:
        seed = base64.b64decode(encoded, validate=True)
        return Signer(key_id=key_id, key=Ed25519PrivateKey.from_private_bytes(seed))
    except ValueError:
        raise CodecKeyError(f"{label}: key {key_id[:16]!r} is not 32 bytes of standard base64") from None


def parse_public_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """`kid:base64[,kid:base64…]` (raw 32-byte Ed25519 public keys)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in filter(None, (part.strip() for part in text.replace("\n", ",").split(","))):
        key_id, _, encoded = entry.partition(":")
        try:
            keys[key_id] = Ed25519PublicKey.from_public_bytes(base64.b64decode(encoded, validate=True))
        except ValueError:
            raise CodecKeyError(f"KEFU_PRINCIPAL_TRUSTED: key {key_id[:16]!r} is not 32 bytes of base64") from None
    return keys


def public_entry(signer: Signer) -> str:
    """The `kid:base64` line another worker puts in KEFU_PRINCIPAL_TRUSTED to trust this signer."""
    raw = signer.public().public_bytes_raw()
    return f"{signer.key_id}:{base64.b64encode(raw).decode()}"


def key_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get("KEFU_PRINCIPAL_KEY_FILE", "").strip()
    return Path(explicit) if explicit else Path(env.get("KEFU_DATA_DIR", ".data")) / "principal.key"


def signer_from_env(environ: Mapping[str, str] | None = None, create: bool = True) -> Signer:
    """This process's signing key; the default file is created owner-only on first use (never overwritten)."""
    env = os.environ if environ is None else environ
    path = key_file(env)
    if create and not env.get("KEFU_PRINCIPAL_KEY_FILE", "").strip() and not path.exists():
        private_dir(path.parent, tighten=True)
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        with contextlib.suppress(FileExistsError):  # another process made it first: read theirs
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                entry = base64.b64encode(seed).decode()
                fh.write(f"# kefu principal signing key (Ed25519); keep it secret\np1:{entry}\n")
    return _parse_private(read_secret_file(path, "principal key file"), str(path))


def verifier_from_env(environ: Mapping[str, str] | None = None) -> Verifier:
    """The worker's own key (all roles, system included) and KEFU_PRINCIPAL_TRUSTED (every role but system)."""
    env = os.environ if environ is None else environ
    own = signer_from_env(env)
    trusted = parse_public_keys(env.get("KEFU_PRINCIPAL_TRUSTED", ""))
    return Verifier(keys={**trusted, own.key_id: own.public()}, system_kids=frozenset({own.key_id}))


def actor_of(payload: Any) -> Principal | None:
    """The actor a payload names (`actor: {id, role}`), as a principal; None when it names none or a bad one."""
    actor = getattr(payload, "actor", None)
    if actor is None and isinstance(payload, Mapping):
        actor = payload.get("actor")
    if isinstance(actor, BaseModel):
        actor = actor.model_dump()
    if not isinstance(actor, Mapping):
        return None
    try:
        return Principal(sub=actor.get("id"), role=actor.get("role"))  # type: ignore[arg-type]
    except ValidationError:
        return None  # the handler refuses the payload itself, naming the field


# --- the client side: who the next calls act as ----------------------------------------------------------------
_acting: ContextVar[Principal | None] = ContextVar("kefu_acting", default=None)


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    """Updates and signals sent in this block carry `principal`, signed by this process's key."""
    token = _acting.set(principal)
    try:
        yield
    finally:
        _acting.reset(token)


def principal_for(message: str, payload: Any) -> Principal | None:
    """Without `acting_as`: a trusted local tool (the demo, the tests, a shell holding the signing key) acts as the
    actor its payload names; customer answers as the customer."""
    if (acting := _acting.get()) is not None:
        return acting
    actor = actor_of(payload)
    if actor is not None and actor.role != "system":
        return actor  # never vouch for `system` on a payload's word: only the worker acts as the engine
    return Principal(sub="customer", role="customer") if message in ("confirm", "survey") else None


class SigningInterceptor(temporalio.client.Interceptor):
    """Attaches the signed principal to every update and signal this client sends."""

    def __init__(self, signer: Signer, trust_payload_actor: bool = True) -> None:
        self.signer = signer
        self.trust_payload_actor = trust_payload_actor

    def intercept_client(self, next: temporalio.client.OutboundInterceptor) -> temporalio.client.OutboundInterceptor:
        return _SigningOutbound(next, self)


class _SigningOutbound(temporalio.client.OutboundInterceptor):
    def __init__(self, next: temporalio.client.OutboundInterceptor, owner: SigningInterceptor) -> None:
        super().__init__(next)
        self.owner = owner

    def _headers(self, headers: Mapping[str, Payload], workflow_id: str, message: str,
                 args: Any) -> Mapping[str, Payload]:
        payload = args[0] if args else None
        principal = principal_for(message, payload) if self.owner.trust_payload_actor else _acting.get()
        if principal is None:
            return headers
        token = self.owner.signer.sign(principal, workflow_id, message, payload, datetime.now().astimezone())
        return {**headers, HEADER: Payload(metadata={"encoding": b"binary/plain"}, data=token.encode("ascii"))}

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        input.headers = self._headers(input.headers, input.id, input.signal, input.args)
        await super().signal_workflow(input)

    async def start_workflow_update(
            self, input: temporalio.client.StartWorkflowUpdateInput) -> temporalio.client.WorkflowUpdateHandle[Any]:
        input.headers = self._headers(input.headers, input.id, input.update, input.args)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
            self, input: temporalio.client.StartWorkflowUpdateWithStartInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        update = input.update_workflow_input
        update.headers = self._headers(update.headers, input.start_workflow_input.id, update.update, update.args)
        return await super().start_update_with_start_workflow(input)


def header_token(headers: Mapping[str, Payload]) -> str | None:
    payload = headers.get(HEADER)
    return payload.data.decode("ascii", errors="replace") if payload is not None else None


__all__ = ["HEADER", "SYSTEM", "Principal", "PrincipalError", "Signer", "SigningInterceptor", "Verifier",
           "acting_as", "digest", "header_token", "public_entry", "signer_from_env",
           "verifier_from_env"]
