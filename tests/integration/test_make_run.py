"""`make run` as a newcomer runs it: worker.py --dev starts the dev server (and, with keys, the codec server the
Web UI decodes through) and SIGTERM stops everything."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from archive import migrate
from infra.codec import new_key_entry

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(proc: subprocess.Popen[str], text: str, seconds: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not printed; got: {''.join(lines)[-2000:]}")


def test_run_with_keys_wires_the_web_ui_to_the_codec_server(tmp_path: Path) -> None:
    port, ui_port, codec_port = free_port(), free_port(), free_port()
    env = {**os.environ, "KEFU_CODEC_KEYS": new_key_entry("k1"), "KEFU_DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "worker.py", "--dev", "--port", str(port), "--ui-port", str(ui_port),
                             "--codec-port", str(codec_port)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines = wait_for_line(proc, "worker polling")
        assert any(f"decodes through http://127.0.0.1:{codec_port}" in line for line in lines)
        with urllib.request.urlopen(f"http://localhost:{ui_port}/", timeout=10) as page:
            assert page.status == 200  # the Web UI
        plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                 "data": base64.b64encode(b'"hello"').decode()}
        request = urllib.request.Request(f"http://127.0.0.1:{codec_port}/decode", method="POST",
                                         data=json.dumps({"payloads": [plain]}).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "Origin": f"http://localhost:{ui_port}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.headers["Access-Control-Allow-Origin"] == f"http://localhost:{ui_port}"
            assert json.load(answer)["payloads"][0]["data"] == plain["data"]  # unencrypted passes through
        server_args = subprocess.run(["pgrep", "-af", f"start-dev --port {port} "], capture_output=True,
                                     text=True).stdout
        assert f"--ui-codec-endpoint http://127.0.0.1:{codec_port}" in server_args
        # issue 15: the archive `make run` creates is at the migrations' head (doctor content, db upgrade a no-op)
        assert migrate.current(env["DATABASE_URL"]) == migrate.head()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    deadline = time.monotonic() + 30  # worker.py waits for its dev server to stop; the process table may lag
    while subprocess.run(["pgrep", "-f", f"start-dev --port {port} "]).returncode != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert subprocess.run(["pgrep", "-f", f"start-dev --port {port} "]).returncode == 1, "dev server left behind"


PORT_VARIABLES = {"KEFU_TEMPORAL_PORT": "Temporal dev server", "KEFU_UI_PORT": "Web UI",
                  "KEFU_CODEC_PORT": "codec server"}


@pytest.mark.parametrize("variable", sorted(PORT_VARIABLES))
def test_a_taken_port_is_one_line_naming_it_and_its_variable(tmp_path: Path, variable: str) -> None:
    """Issue 15: `make run` with 7233, 8233 or 8081 taken printed a traceback (codec) or a pointer to a log (Web
    UI); now one line names the port and the variable to change, exit 2, and nothing is started."""
    ports = {name: free_port() for name in PORT_VARIABLES}
    env = {**os.environ, **{name: str(port) for name, port in ports.items()}, "KEFU_DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}", "PYTHONUNBUFFERED": "1"}
    env.pop("KEFU_CODEC_KEYS", None)
    with socket.socket() as holder:  # another program on the port
        holder.bind(("127.0.0.1", ports[variable]))
        holder.listen(1)
        done = subprocess.run([sys.executable, "worker.py", "--dev"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == done.stderr.strip().splitlines()[0] and "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert line.startswith(f"error: port {ports[variable]} ({PORT_VARIABLES[variable]}) is taken; set {variable} "
                           f"to a free port"), line
    assert not (tmp_path / "data" / "temporal.db").exists(), "the dev server was started"
    assert not (tmp_path / "data" / "codec.key").exists(), "work was done before the ports were checked"


def test_make_run_passes_the_port_variables_through() -> None:
    done = subprocess.run(["make", "-n", "run", "KEFU_TEMPORAL_PORT=7300", "KEFU_UI_PORT=8300",
                           "KEFU_CODEC_PORT=8091"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "KEFU_TEMPORAL_PORT=7300 KEFU_UI_PORT=8300 KEFU_CODEC_PORT=8091" in done.stdout
    assert "worker.py --dev" in done.stdout
