"""AES-256-GCM payload codec: round trip, key id in the metadata, rotation, tampering, refused plaintext, key
loading, owner-only key files."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter

from infra import temporal_env
from infra.codec import (
    ENCODING,
    KEY_ID,
    CodecKeyError,
    EncryptionCodec,
    PlaintextPayloadError,
    codec_from_env,
    ensure_default_key,
    load_keys,
    parse_keys,
)
from models.intake import Customer
from tests.modes import mode

K1, K2 = bytes(range(32)), bytes(range(32, 64))
B1, B2 = base64.b64encode(K1).decode(), base64.b64encode(K2).decode()


def plain(text: str = '{"name":"王小明","phone":"13812345678"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_round_trip_hides_the_data_and_names_the_key() -> None:
    codec = EncryptionCodec([("k1", K1)])
    [sealed] = await codec.encode([plain()])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert b"13812345678" not in sealed.data and "王小明".encode() not in sealed.data
    assert await codec.decode([sealed]) == [plain()]


async def test_same_payload_encrypts_differently_each_time() -> None:
    codec = EncryptionCodec([("k1", K1)])
    first, second = await codec.encode([plain(), plain()])
    assert first.data != second.data  # random nonce


async def test_rotation_first_key_encrypts_all_keys_decrypt() -> None:
    old = EncryptionCodec([("k1", K1)])
    [before] = await old.encode([plain("old")])
    rotated = codec_from_env({"KEFU_CODEC_KEYS": f"k2:{B2},k1:{B1}"})
    assert rotated is not None and rotated.key_ids == ["k2", "k1"]
    [after] = await rotated.encode([plain("new")])
    assert after.metadata[KEY_ID] == b"k2"
    assert await rotated.decode([before, after]) == [plain("old"), plain("new")]
    with pytest.raises(CodecKeyError, match="k2"):
        await old.decode([after])  # a retired-key-only reader cannot read new payloads


async def test_unencrypted_payload_is_refused_without_echoing_it() -> None:
    """A client without the key must not get customer data in clear past the worker (issue 15)."""
    codec = EncryptionCodec([("k1", K1)])
    converter = temporal_env.data_converter(codec)
    with pytest.raises(PlaintextPayloadError) as info:
        await converter.decode([plain()], [Customer])
    message = str(info.value)
    assert "payload is not encrypted (encoding json/plain)" in message and "requires encryption" in message
    assert "王小明" not in message and "138" not in message
    assert info.value.non_retryable and info.value.type == "PlaintextPayload"
    [marker] = await codec.decode([plain()])  # decode defers the refusal to conversion and drops the data
    assert marker.data == b"" and marker.metadata["encoding"] != b"json/plain"
    with pytest.raises(PlaintextPayloadError):
        codec.decrypt(plain())
    hostile = Payload(metadata={"encoding": "json/plain\n王小明 13812345678".encode()}, data=b"x")
    with pytest.raises(PlaintextPayloadError) as info:
        await converter.decode([hostile], [str])
    assert "13812345678" not in str(info.value) and "\n" not in str(info.value)


async def test_plaintext_refusal_reaches_a_sender_without_the_key() -> None:
    """Other failures are encrypted (they may quote customer text); this one quotes nothing and must be readable."""
    converter = temporal_env.data_converter(EncryptionCodec([("k1", K1)]))
    failure = Failure()
    converter.failure_converter.to_failure(PlaintextPayloadError("json/plain"), converter.payload_converter, failure)
    assert "not encrypted" in failure.message and not failure.HasField("encoded_attributes")
    converter.failure_converter.to_failure(ValueError("王小明"), converter.payload_converter, failure)
    assert failure.message == "Encoded failure"


async def test_plaintext_allowed_for_viewers_and_migration() -> None:
    assert await EncryptionCodec([("k1", K1)], allow_plaintext=True).decode([plain()]) == [plain()]
    assert await EncryptionCodec([("k1", K1)]).with_plaintext_allowed().decode([plain()]) == [plain()]
    migrating = codec_from_env({"KEFU_CODEC_KEYS": f"k1:{B1}", "KEFU_CODEC_ALLOW_PLAINTEXT": "1"})
    assert migrating is not None and migrating.allow_plaintext
    strict = codec_from_env({"KEFU_CODEC_KEYS": f"k1:{B1}"})
    assert strict is not None and not strict.allow_plaintext


async def test_tampered_ciphertext_or_key_id_is_refused() -> None:
    codec = EncryptionCodec([("k1", K1), ("k2", K2)])
    [sealed] = await codec.encode([plain()])
    flipped = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        await codec.decode([flipped])
    relabeled = Payload(metadata={**sealed.metadata, KEY_ID: b"k2"}, data=sealed.data)
    with pytest.raises(InvalidTag):
        await codec.decode([relabeled])



def test_key_loading_from_env_and_file(tmp_path: Path) -> None:
    assert codec_from_env({"KEFU_DATA_DIR": str(tmp_path)}) is None  # encryption off without keys
    key_file = tmp_path / "codec.keys"
    key_file.write_text(f"# kefu codec keys\nk2:{B2}\n\nk1:{B1}  # retired 2026-10\n", encoding="utf-8")
    key_file.chmod(0o600)
    assert load_keys({"KEFU_CODEC_KEY_FILE": str(key_file)}) == [("k2", K2), ("k1", K1)]
    both = load_keys({"KEFU_CODEC_KEYS": f"k3:{base64.b64encode(bytes(32)).decode()}",
                      "KEFU_CODEC_KEY_FILE": str(key_file)})
    assert [key_id for key_id, _ in both] == ["k3", "k2", "k1"]


@pytest.mark.parametrize(("text", "words"), [
    ("k1", "expected id:base64key"),
    ("k1:not-base64!", "not valid base64"),
    (f"k1:{base64.b64encode(bytes(16)).decode()}", "AES-256 needs 32"),
    (f"k1:{B1},k1:{B2}", "appears twice"),
    (f":{B1}", "non-empty"),
])
def test_bad_keys_are_refused(text: str, words: str) -> None:
    with pytest.raises(CodecKeyError, match=words):
        EncryptionCodec(parse_keys(text))


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o620, 0o604, 0o660])
def test_a_key_file_others_may_read_or_write_is_refused(tmp_path: Path, loose: int) -> None:
    key_file = tmp_path / "codec.keys"
    key_file.write_text(f"k1:{B1}\n", encoding="utf-8")
    key_file.chmod(loose)
    with pytest.raises(CodecKeyError) as info:
        codec_from_env({"KEFU_CODEC_KEY_FILE": str(key_file)})
    assert str(info.value) == (f"KEFU_CODEC_KEY_FILE {key_file}: mode 0{loose:o} lets group or others read or "
                               f"write it; run `chmod 600 {key_file}`")
    assert B1 not in str(info.value)
    (tmp_path / "codec.key").write_text(f"k1:{B1}\n", encoding="utf-8")  # the file `make run` reads by default
    (tmp_path / "codec.key").chmod(loose)
    with pytest.raises(CodecKeyError, match="chmod 600"):
        load_keys({"KEFU_DATA_DIR": str(tmp_path)})
    assert load_keys({"KEFU_CODEC_KEYS": f"k1:{B1}", "KEFU_DATA_DIR": str(tmp_path)}) == [("k1", K1)]  # env: no file


def test_an_unreadable_key_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CodecKeyError, match=r"^KEFU_CODEC_KEY_FILE .*missing: cannot read \(No such file"):
        load_keys({"KEFU_CODEC_KEY_FILE": str(tmp_path / "missing")})


def test_make_run_key_is_owner_only_in_an_owner_only_folder(tmp_path: Path, umask_022: None) -> None:
    data = tmp_path / "data"
    data.mkdir()  # made 0755 by an older kefu or `make demo`
    path = ensure_default_key({"KEFU_DATA_DIR": str(data)})
    assert (mode(data), mode(path)) == (0o700, 0o600)
    assert load_keys({"KEFU_DATA_DIR": str(data)})[0][0] == "k1"


def genkey(*args: str, stdout: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.codec", "genkey", *args], stdout=stdout or subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)


def test_genkey_out_writes_an_owner_only_file_and_never_overwrites(tmp_path: Path, umask_022: None) -> None:
    key_file = tmp_path / "secrets" / "codec.keys"
    done = genkey("k9", "--out", str(key_file))
    assert done.returncode == 0 and "mode 0600" in done.stderr and done.stdout == ""
    assert mode(key_file) == 0o600 and mode(key_file.parent) == 0o700
    [(key_id, key)] = load_keys({"KEFU_CODEC_KEY_FILE": str(key_file)})
    assert key_id == "k9" and len(key) == 32
    again = genkey("k10", "--out", str(key_file))
    assert again.returncode == 2 and "exists: not overwritten" in again.stderr
    assert load_keys({"KEFU_CODEC_KEY_FILE": str(key_file)})[0][0] == "k9"


def test_genkey_redirected_to_a_file_leaves_it_owner_only(tmp_path: Path, umask_022: None) -> None:
    """The older documented form `genkey k1 > FILE`: the shell creates FILE 0644 before genkey runs."""
    key_file = tmp_path / "codec.keys"
    with key_file.open("w") as out:
        assert genkey("k1", stdout=out.fileno()).returncode == 0
    assert mode(key_file) == 0o600
    assert load_keys({"KEFU_CODEC_KEY_FILE": str(key_file)})[0][0] == "k1"


def test_data_converter_is_plain_without_keys_and_encrypts_with_them(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.delenv("KEFU_CODEC_KEYS", raising=False)
    monkeypatch.delenv("KEFU_CODEC_KEY_FILE", raising=False)
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path))
    assert temporal_env.data_converter() is pydantic_data_converter
    monkeypatch.setenv("KEFU_CODEC_KEYS", f"k1:{B1}")
    converter = temporal_env.data_converter()
    assert isinstance(converter.payload_codec, EncryptionCodec) and not converter.payload_codec.allow_plaintext
    assert issubclass(dataclasses.replace(converter, payload_codec=None).payload_converter_class,
                      PydanticPayloadConverter)
    replaying = temporal_env.data_converter(allow_plaintext=True)
    assert isinstance(replaying.payload_codec, EncryptionCodec) and replaying.payload_codec.allow_plaintext


async def test_data_converter_round_trips_a_pydantic_model() -> None:
    converter = temporal_env.data_converter(EncryptionCodec([("k1", K1)]))
    customer = Customer(id="C-1", name="李雷", phone="13900001111")
    [payload] = await converter.encode([customer])
    assert payload.metadata["encoding"] == ENCODING and b"13900001111" not in payload.data
    assert await converter.decode([payload], [Customer]) == [customer]
