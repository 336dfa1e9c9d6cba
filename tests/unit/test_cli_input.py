"""Issue 15: the CLI's input errors are one line and exit 2 whatever the server's state.

- a file that is not UTF-8 (intake, agent directory, policy pack, payload key file) names the option or file and the
  first bad byte, never a UnicodeDecodeError traceback;
- every argument and payload is validated before connecting, so a bad input gets its own error with the server
  down;
- a connection failure is one complete line naming the address and the fix, never cut off mid-word.

Runs in process against an address nothing listens on (a bound, non-listening socket): no Temporal server needed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cli import common
from cli.main import main as kefu
from policies import loader
from policies.loader import BUILTIN_DIR, PolicyError, load_pack

BAD_BYTES = b'{"request_id": "r-1", "description": "\xff\xfe"}'  # 0xff at offset 38
NOT_UTF8 = "is not UTF-8 text (byte 0xff at offset 38)"


@pytest.fixture
def closed_address() -> Iterator[str]:
    """host:port where nothing listens, reserved for the test (bound, never listening: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(autouse=True)
def _offline(closed_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEFU_POLICY_PATH", "KEFU_CODEC_KEYS", "KEFU_CODEC_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", closed_address)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'kefu.db'}")
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "data"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = kefu(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, _, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err
    return lines[0]


# --- 1. files that are not UTF-8 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ("submit", "--file", "{file}"),
    ("agent", "import", "{file}"),
    ("policy", "check", "{file}"),
], ids=["submit-file", "agent-import", "policy-check"])
def test_a_file_that_is_not_utf8_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        command: tuple[str, ...]) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes(BAD_BYTES)
    line = one_line_error(capsys, *(part.format(file=bad) for part in command))
    assert str(bad) in line and "not UTF-8 text (byte 0xff at offset 38)" in line
    assert "\xff" not in line and "description" not in line  # the content is never quoted
    if command[0] == "submit":
        assert line == f"kefu submit: --file: {bad} {NOT_UTF8}"


def test_a_pack_on_the_policy_path_that_is_not_utf8_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "packs"
    folder.mkdir()
    (folder / "mine.yaml").write_bytes(b"\xef\xbb\xbfid: mine\ntitle: caf\xe9\n")  # a BOM is fine, Latin-1 is not
    monkeypatch.setenv("KEFU_POLICY_PATH", str(folder))
    for command in (("policy", "list"), ("sla", "service_center", "normal"), ("policy", "show", "telecom")):
        line = one_line_error(capsys, *command)
        assert f"{folder / 'mine.yaml'}: not UTF-8 text (byte 0xe9 at offset 22)" in line


def test_a_utf8_file_with_a_bom_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "bom.yaml"
    pack.write_bytes(b"\xef\xbb\xbf" + (BUILTIN_DIR / "telecom.yaml").read_bytes())
    code, out, err = run(capsys, "policy", "check", str(pack))
    assert code == 0 and "ok (telecom v1)" in out, err


def test_a_payload_key_file_that_is_not_utf8_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "codec.key"
    key_file.write_bytes(b"k1:\xff\n")
    key_file.chmod(0o600)  # owner-only, or the mode check speaks first
    monkeypatch.setenv("KEFU_CODEC_KEY_FILE", str(key_file))
    line = one_line_error(capsys, "status", "r-1")
    assert line == f"kefu status: KEFU_CODEC_KEY_FILE: {key_file} is not UTF-8 text (byte 0xff at offset 3)"


def test_an_intake_file_that_is_not_an_object_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    assert one_line_error(capsys, "submit", "--file", str(listed)) == \
        f"kefu submit: --file: {listed} must hold one JSON object (the intake)"


# --- 2. `kefu policy check` lists every problem -----------------------------------------------------------------------
def broken_pack(tmp_path: Path) -> tuple[Path, list[tuple[str, str]]]:
    """service_center with an unknown top-level field and twelve missing ones (one of them nested)."""
    raw = yaml.safe_load((BUILTIN_DIR / "service_center.yaml").read_text(encoding="utf-8"))
    raw["colour"] = "blue"
    missing = ["title", "manual", "calendar", "channels", "request_types", "classes", "classification",
               "complaint_grades", "extensions", "closure", "revisit"]
    kept = {key: value for key, value in raw.items() if key not in missing}
    del kept["escalation"][1]["role"]
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(kept, allow_unicode=True, sort_keys=False), encoding="utf-8")
    expected = [(field, "Field required") for field in missing] + [("escalation.1.role", "Field required"),
                                                                  ("colour", "Extra inputs are not permitted")]
    assert len(expected) == 13
    return path, expected


def test_policy_check_lists_every_problem_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, expected = broken_pack(tmp_path)
    code, out, err = run(capsys, "policy", "check", str(path))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert sorted(lines) == sorted(f"{path}: {field}: {message}" for field, message in expected)
    assert "Traceback" not in err and "more)" not in err


def test_policy_check_json_gives_the_same_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path, expected = broken_pack(tmp_path)
    code, out, _ = run(capsys, "policy", "check", str(path), "--json")
    assert code == 2
    problems = json.loads(out)
    assert sorted((p["file"], p["field"], p["message"]) for p in problems) == \
        sorted((str(path), field, message) for field, message in expected)


def test_policy_check_names_the_line_of_a_yaml_syntax_error(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("id: x\nversion: 1\nclasses:\n  normal: [a, b\n  urgent: 1\n", encoding="utf-8")
    line = one_line_error(capsys, "policy", "check", str(path))
    assert line.startswith(f"{path}:5: not valid YAML: ")
    _, problems = loader.check_pack(path)
    assert [(p.file, p.field, p.line) for p in problems] == [(str(path), None, 5)]


def test_load_pack_keeps_one_line_for_its_other_callers(tmp_path: Path) -> None:
    path, expected = broken_pack(tmp_path)
    with pytest.raises(PolicyError) as refused:
        load_pack(path)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert message.endswith(f"(+{len(expected) - 1} more)")


# --- 3. validation before connecting; the connection failure in one complete line ----------------------------------
@pytest.mark.parametrize(("command", "field"), [
    (("submit", "--request-id", "r-1", "--channel", "phone", "--customer-id", "C-1", "--name", "韩梅梅",
      "--phone", "not-a-phone", "--description", "咨询账单"), "customer.phone"),
    (("submit", "--request-id", "r-1", "--channel", "phone", "--customer-id", "C-1", "--name", "韩梅梅",
      "--phone", "13900001111", "--description", "咨询账单", "--policy", "no_such_policy"), "no_such_policy"),
    (("act", "r-1", "respond", "--actor", "a1", "--role", "wizard", "--message", "hi"), "actor.role"),
    (("survey", "r-1", "--score", "500"), "score"),
    (("confirm", "r-1", "--comment", "x" * 1001), "comment"),
    (("escalate", "r-1", "--actor", "sup-1", "--reason", "late", "--to-level", "-1"), "to_level"),
    (("escalate-bulk", "--overdue", "--actor", "sup-1", "--reason", "late", "--to-level", "-1", "--yes"), "to_level"),
    (("incident", "declare", "--incident-id", "INC-1", "--level", "9", "--title", "t", "--lead", "sup-1",
      "--actor", "sup-1"), "level"),
    (("incident", "declare", "--incident-id", "INC-1", "--level", "2", "--title", "t", "--lead", "sup-1",
      "--actor", "sup-1", "--policy", "no_such_policy"), "unknown policy 'no_such_policy'"),
    (("incident", "update", "INC-1", "--actor", "sup-1", "--text", ""), "text"),
], ids=["submit-phone", "submit-policy", "act-role", "survey-score", "confirm-comment", "escalate-level",
        "escalate-bulk-level", "incident-level", "incident-policy", "incident-text"])
def test_bad_input_gets_its_own_error_with_the_server_down(capsys: pytest.CaptureFixture[str],
                                                           command: tuple[str, ...], field: str) -> None:
    line = one_line_error(capsys, *command)
    assert field in line and "cannot reach" not in line, line
    assert "韩梅梅" not in line  # no personal data in an error line


def test_an_unreachable_server_is_one_complete_line(closed_address: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (("status", "r-1"), ("act", "r-1", "respond", "--actor", "a1", "--message", "hi"),
                    ("incident", "show", "INC-1")):
        line = one_line_error(capsys, *command)
        assert line == (f"kefu {command[0]}: cannot reach Temporal at {closed_address}: connection refused; "
                        f"start it with `make run` or set TEMPORAL_ADDRESS")


@pytest.mark.parametrize(("address", "problem"), [
    ("no-such-host.invalid:7233", "unknown host; start it with `make run` or set TEMPORAL_ADDRESS"),
    ("not an address", "not a host:port address"),
    ("localhost:99999", "not a host:port address (invalid port number); set TEMPORAL_ADDRESS"),
])
def test_a_bad_address_is_one_plain_line(address: str, problem: str, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    line = one_line_error(capsys, "status", "r-1")
    assert line.startswith(f"kefu status: cannot reach Temporal at {address}: {problem}")
    assert "tonic" not in line and "Failed client connect" not in line


def test_a_server_that_never_answers_times_out_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as silent:  # accepts TCP (backlog) and never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("TEMPORAL_ADDRESS", address)
        monkeypatch.setattr(common, "CONNECT_TIMEOUT", 0.5)
        line = one_line_error(capsys, "status", "r-1")
    assert line.startswith(f"kefu status: cannot reach Temporal at {address}: no answer within 0 s; ")


@pytest.mark.parametrize(("raw", "expected"), [
    ('Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError('
     'ConnectError("tcp connect error", 127.0.0.1:1, Os { code: 111, kind: ConnectionRefused, message: '
     '"Connection refused" })))', "connection refused"),
    ('Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError(Custom { '
     'kind: UnexpectedEof, error: "tls handshake eof" }))', "TLS handshake failed (a plain, non-TLS server?)"),
    ('Failed client connect: `get_system_info` call error after connection: Status { code: Unimplemented, '
     'message: "grpc-status header missing, mapped from HTTP status code 404", metadata: MetadataMap { } }',
     "not a Temporal frontend (it answered HTTP 404)"),
    ('Failed client connect: `get_system_info` call error after connection: Status { code: Unknown, message: '
     '"transport error", source: Some(tonic::transport::Error(Transport, hyper::Error(Io, Kind(ConnectionReset)))) }',
     "the connection was closed during the handshake"),
    ("Failed client connect: " + "word " * 60, ("word " * 24).strip() + " …"),
], ids=["refused", "tls-to-plain", "http-404", "reset", "unknown-long"])
def test_connection_problems_in_plain_words(raw: str, expected: str) -> None:
    problem, hint = common.connection_problem(RuntimeError(raw))
    assert problem == expected
    assert hint and "\n" not in problem
