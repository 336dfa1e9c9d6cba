"""Data at rest on a real machine (issue 15): the dev server `make run` starts keeps its database and log owner-only
under an owner-only .data/, and the worker and the CLI refuse a key file that group or others may read, in one line
that names the file, its mode and the fix."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra.codec import new_key_entry
from tests.modes import mode, umask
from worker import dev_server

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEFU = str(Path(sys.executable).parent / "kefu")



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_dev_server_state_and_log_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)  # as `make demo` or an older kefu left it
    (data / "temporal-server.log").write_text("older run\n")
    (data / "temporal-server.log").chmod(0o644)
    with umask(0o022):
        async with dev_server(free_port(), free_port(), state_dir=data):
            files = {p.name: mode(p) for p in data.iterdir()}
    assert mode(data) == 0o700
    assert "temporal.db" in files and set(files.values()) == {0o600}, files


@pytest.fixture
def loose_key(tmp_path: Path) -> Path:
    key_file = tmp_path / "codec.keys"
    key_file.write_text(new_key_entry("k1") + "\n")
    key_file.chmod(0o644)
    return key_file


def run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """command with no Temporal server to reach and no keys but env's."""
    environment = {k: v for k, v in os.environ.items() if k not in ("KEFU_CODEC_KEYS", "KEFU_CODEC_KEY_FILE")}
    environment.update(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}", **env)
    proc = subprocess.Popen(command, env=environment, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=120)  # a refusal takes seconds; a loaded machine's imports more
    except subprocess.TimeoutExpired:  # it started instead of refusing: SIGTERM stops it and its dev server
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"{command[1]} started instead of refusing the key file: {err[-500:]}") from None
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.mark.parametrize("command", [[sys.executable, "worker.py"], [KEFU, "status", "r-1"]], ids=["worker", "cli"])
def test_worker_and_cli_refuse_a_key_file_others_may_read(loose_key: Path, command: list[str]) -> None:
    done = run(command, KEFU_CODEC_KEY_FILE=str(loose_key))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        f"KEFU_CODEC_KEY_FILE {loose_key}: mode 0644 lets group or others read or write it; "
        f"run `chmod 600 {loose_key}`"), done.stderr
    assert "Traceback" not in done.stderr and loose_key.read_text().split(":")[1].strip() not in done.stderr


def test_make_run_refuses_its_own_key_file_made_readable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "codec.key").write_text(new_key_entry("k1") + "\n")
    (data / "codec.key").chmod(0o640)
    done = run([sys.executable, "worker.py", "--dev", "--port", str(free_port()), "--ui-port", str(free_port()),
                "--codec-port", str(free_port())], KEFU_DATA_DIR=str(data),
               DATABASE_URL=f"sqlite:///{tmp_path / 'kefu.db'}")
    assert done.returncode == 2 and f"mode 0640 lets group or others read or write it; run `chmod 600 " \
        f"{data / 'codec.key'}`" in done.stderr, done.stderr
    assert not (data / "temporal.db").exists()  # refused before anything started
