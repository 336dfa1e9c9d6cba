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
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import os
import secrets
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from infra.private_files import loose_mode_error, private_dir

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32  # AES-256


class CodecKeyError(ValueError):
    """A key entry or key file is unusable, or a payload names a key id that is not configured."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key; decrypts with whichever configured key the payload names."""

    def __init__(self, keys: Mapping[str, bytes] | Sequence[tuple[str, bytes]]) -> None:
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

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.encrypt_key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """Payloads that are not encrypted (recorded before encryption was turned on) pass through unchanged."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecKeyError(f"payload encrypted with key {key_id!r}, which is not configured "
                                f"(configured: {', '.join(self._ciphers)})")
        plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


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


def codec_from_env(environ: Mapping[str, str] | None = None) -> EncryptionCodec | None:
    """The codec when keys are configured, else None (encryption off)."""
    entries = load_keys(environ)
    return EncryptionCodec(entries) if entries else None


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
