"""AES-256-GCM payload encryption (SEEDS §10: encryption at rest) as a Temporal PayloadCodec.

Every payload the client or worker sends (workflow input, update and signal arguments, results, local activity
results, memo, static summary and current details) is serialized, encrypted with AES-256-GCM and stored as one
payload with metadata `encoding: binary/encrypted` and `encryption-key-id: <id>`; the key id is also the GCM
associated data, so a payload cannot be moved to another key id. The Temporal server (and its database) only ever
sees ciphertext. Search attributes are never encrypted (they are indexed); kefu keeps them free of PII.

Keys (32 bytes each, base64) come from the environment:

    KEFU_CODEC_KEYS="k2026b:<base64>,k2026a:<base64>"   the first key encrypts, all of them decrypt (rotation)
    KEFU_CODEC_KEY_FILE=/etc/kefu/codec.keys             the same `id:base64key` entries, one per line, # comments

With neither set, the key `make run` created (.data/codec.key) is used if it exists; otherwise encryption is off
(tests). A key file that group or others may read or write is refused. `python -m infra.codec genkey [id] --out FILE`
writes a new entry to an owner-only file (without --out it prints it).

With encryption on, a payload that is not encrypted is refused (KEFU_CODEC_ALLOW_PLAINTEXT=1 accepts them while
requests started before encryption are still open). The codec cannot raise at decode time without failing every
job of the workflow task that carried the payload, so decode() replaces the payload by an empty marker and the
payload converter raises PlaintextPayloadError (non-retryable) for it: a plaintext start fails its workflow, a
plaintext update is rejected to its sender, a plaintext signal is dropped, and the rest of the run is untouched.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import os
import secrets
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DefaultFailureConverterWithEncodedAttributes,
    EncodingPayloadConverter,
    PayloadCodec,
    PayloadConverter,
)
from temporalio.exceptions import ApplicationError

from infra.private_files import loose_mode_error, private_dir

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
REFUSED = b"binary/kefu-refused-plaintext"  # marker left by decode() for a payload that was not encrypted
REFUSED_ENCODING = "kefu-refused-encoding"  # the marker's only content: the refused payload's encoding name
NONCE_BYTES = 12
KEY_BYTES = 32  # AES-256
TRUE = ("1", "true", "yes", "on")
STANDARD_ENCODINGS = frozenset({b"binary/null", b"binary/plain", b"json/plain", b"json/protobuf", b"binary/protobuf"})


class CodecKeyError(ValueError):
    """A key entry or key file is unusable, or a payload names a key id that is not configured."""


class PlaintextPayloadError(ApplicationError):
    """A payload reached kefu unencrypted while encryption is on. Non-retryable, so a workflow started with one
    fails at once instead of retrying its first task; the payload itself is never quoted."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"payload is not encrypted (encoding {encoding}) and kefu requires encryption: encrypt it "
                         f"with the shared key (docs/security.md)", type="PlaintextPayload", non_retryable=True)


def _encoding_name(payload: Payload) -> str:
    """The payload's encoding when it is one of the SDKs' standard ones; anything else comes from the sender and
    could carry anything, so it is not repeated."""
    raw = payload.metadata.get("encoding")
    if raw is None:
        return "none"
    return raw.decode() if raw in STANDARD_ENCODINGS else "not a standard one"


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key; decrypts with whichever configured key the payload names. allow_plaintext:
    unencrypted payloads decode unchanged (the codec server shows them; migration), else they are refused."""

    def __init__(self, keys: Mapping[str, bytes] | Sequence[tuple[str, bytes]], allow_plaintext: bool = False) -> None:
        self.allow_plaintext = allow_plaintext
        entries = list(keys.items()) if isinstance(keys, Mapping) else list(keys)
        if not entries:
            raise CodecKeyError("at least one key is needed")
        self._ciphers: dict[str, AESGCM] = {}
        for key_id, key in entries:
            if not key_id or ":" in key_id or "," in key_id:
                raise CodecKeyError(f"key id {key_id!r}: must be non-empty, without ':' or ','")
            if len(key) != KEY_BYTES:
                raise CodecKeyError(f"key {key_id}: {len(key)} bytes, AES-256 needs {KEY_BYTES}")
            if key_id in self._ciphers:
                raise CodecKeyError(f"key id {key_id} appears twice")
            self._ciphers[key_id] = AESGCM(key)
        self.encrypt_key_id = entries[0][0]

    def with_plaintext_allowed(self) -> EncryptionCodec:
        """The same keys, passing unencrypted payloads through (for the codec server, a viewer)."""
        viewer = copy.copy(self)
        viewer.allow_plaintext = True
        return viewer

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) if self.allow_plaintext or p.metadata.get("encoding") == ENCODING
                else Payload(metadata={"encoding": REFUSED, REFUSED_ENCODING: _encoding_name(p).encode()})
                for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.encrypt_key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """One payload in clear. An unencrypted one passes through with allow_plaintext, else is refused."""
        if payload.metadata.get("encoding") != ENCODING:
            if self.allow_plaintext:
                return payload
            raise PlaintextPayloadError(_encoding_name(payload))
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecKeyError(f"payload encrypted with key {key_id!r}, which is not configured "
                                f"(configured: {', '.join(self._ciphers)})")
        plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


class RefusedPlaintextConverter(EncodingPayloadConverter):
    """Turns decode()'s marker into PlaintextPayloadError where the payload is converted, so only the start, update,
    signal or query that carried it fails."""

    @property
    def encoding(self) -> str:
        return REFUSED.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise PlaintextPayloadError(payload.metadata.get(REFUSED_ENCODING, b"none").decode())


class KefuPayloadConverter(PydanticPayloadConverter):
    """The pydantic payload converter that also knows the refused-plaintext marker."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(*self.converters.values(), RefusedPlaintextConverter())


class KefuFailureConverter(DefaultFailureConverterWithEncodedAttributes):
    """Failure messages and stack traces are encrypted (they may quote customer text), except a refused plaintext
    payload's: it quotes nothing, and the sender, which has no key, must be able to read why it was refused."""

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, PlaintextPayloadError):
            failure.ClearField("encoded_attributes")
            failure.message = exception.message


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """`id:base64key` entries separated by commas or newlines; blank lines and `#` comments are skipped."""
    entries: list[tuple[str, bytes]] = []
    for raw_line in text.splitlines():
        line = raw_line.split("#", 1)[0]
        for raw in line.split(","):
            entry = raw.strip()
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise CodecKeyError(f"key entry {key_id[:8]}…: expected id:base64key")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise CodecKeyError(f"key {key_id.strip()}: not valid base64") from exc
            entries.append((key_id.strip(), key))
    return entries


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where `make run` keeps the key it creates on first start: .data/codec.key (KEFU_DATA_DIR)."""
    env = os.environ if environ is None else environ
    return Path(env.get("KEFU_DATA_DIR", ".data")) / "codec.key"


def read_secret_file(path: Path, label: str) -> str:
    """The text of a key or token file that only its owner may read or write; else CodecKeyError in one line."""
    try:
        problem = loose_mode_error(path, label)
        if problem is None:
            return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CodecKeyError(f"{label} {path}: cannot read ({exc.strerror})") from None
    raise CodecKeyError(problem)


def load_keys(environ: Mapping[str, str] | None = None) -> list[tuple[str, bytes]]:
    """Keys from KEFU_CODEC_KEYS, then KEFU_CODEC_KEY_FILE (both may be set: the variable's first key encrypts).
    With neither set, the key file `make run` created (.data/codec.key), so the CLI reads what the worker wrote."""
    env = os.environ if environ is None else environ
    entries = parse_keys(env.get("KEFU_CODEC_KEYS", ""))
    key_file = env.get("KEFU_CODEC_KEY_FILE", "").strip()
    if key_file:
        entries += parse_keys(read_secret_file(Path(key_file), "KEFU_CODEC_KEY_FILE"))
    elif not entries and default_key_file(env).is_file():
        entries = parse_keys(read_secret_file(default_key_file(env), "key file"))
    return entries


def write_key_file(path: Path, key_id: str = "k1", comment: str = "kefu payload key") -> Path:
    """A new key in a new owner-only (0600) file; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CodecKeyError(f"{path} exists: not overwritten (to rotate, put a new key first in it by hand)") from None
    except OSError as exc:
        raise CodecKeyError(f"{path}: cannot create ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"# {comment}; keep it secret, keep it to read old runs\n{new_key_entry(key_id)}\n")
    return path


def ensure_default_key(environ: Mapping[str, str] | None = None) -> Path:
    """Create .data/codec.key (owner-only, in an owner-only .data/) when it does not exist yet; returns its path."""
    path = default_key_file(environ)
    private_dir(path.parent, tighten=True)
    if not path.exists():
        write_key_file(path, comment="kefu payload key created by `make run`")
    return path


def allow_plaintext_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """KEFU_CODEC_ALLOW_PLAINTEXT: accept unencrypted payloads while requests started without encryption are open."""
    env = os.environ if environ is None else environ
    return env.get("KEFU_CODEC_ALLOW_PLAINTEXT", "").strip().lower() in TRUE


def codec_from_env(environ: Mapping[str, str] | None = None,
                   allow_plaintext: bool | None = None) -> EncryptionCodec | None:
    """The codec when keys are configured, else None (encryption off). allow_plaintext defaults to
    KEFU_CODEC_ALLOW_PLAINTEXT."""
    entries = load_keys(environ)
    if not entries:
        return None
    allow = allow_plaintext_from_env(environ) if allow_plaintext is None else allow_plaintext
    return EncryptionCodec(entries, allow_plaintext=allow)


def new_key_entry(key_id: str = "k1") -> str:
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.codec", description="payload keys")
    commands = parser.add_subparsers(dest="command", required=True)
    genkey = commands.add_parser("genkey", help="a new key entry (id:base64key)")
    genkey.add_argument("key_id", nargs="?", default="k1")
    genkey.add_argument("--out", type=Path, help="write it to this new owner-only (0600) file instead of stdout")
    args = parser.parse_args(argv)
    try:
        EncryptionCodec([(args.key_id, bytes(KEY_BYTES))])  # the id is valid
        if args.out is not None:
            private_dir(args.out.parent)
            print(f"wrote key {args.key_id} to {write_key_file(args.out, args.key_id)} (mode 0600)", file=sys.stderr)
            return 0
    except CodecKeyError as exc:
        print(f"genkey: {exc}", file=sys.stderr)
        return 2
    out = os.fstat(sys.stdout.fileno())
    if stat.S_ISREG(out.st_mode) and stat.S_IMODE(out.st_mode) & 0o077:  # `genkey > FILE`: the shell made it 0644
        with contextlib.suppress(OSError):
            os.fchmod(sys.stdout.fileno(), 0o600)
    print(new_key_entry(args.key_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
