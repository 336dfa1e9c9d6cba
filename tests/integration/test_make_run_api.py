"""`make run` serves the HTTP API beside the dev server and the worker (worker.py --dev --api): it prints its address,
answers /health and a supervisor's token, and a taken KEFU_API_PORT is one line naming it, before anything starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from infra.issuer import issuer_from_env
from tests.integration.test_make_run import free_port, wait_for_line

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_run_with_api_answers_health_and_a_token(tmp_path: Path) -> None:
    ports = {flag: str(free_port()) for flag in ("--port", "--ui-port", "--codec-port", "--api-port")}
    env = {**os.environ, "KEFU_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}",
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "worker.py", "--dev", "--api", *(x for kv in ports.items() for x in kv)],
                            cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://localhost:{ports['--api-port']}"
    try:
        lines = wait_for_line(proc, "worker polling")
        assert any(f"HTTP API on {base}" in line for line in lines), "".join(lines)
        with urllib.request.urlopen(f"{base}/health", timeout=10) as answer:
            assert json.load(answer) == {"status": "ok", "temporal": "ok", "database": "ok"}
        token = issuer_from_env({"KEFU_DATA_DIR": env["KEFU_DATA_DIR"]}).issue("sup-1", "supervisor",
                                                                               timedelta(minutes=5))
        listing = urllib.request.Request(f"{base}/requests", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(listing, timeout=10) as answer:
            assert json.load(answer) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_a_taken_api_port_is_one_line(tmp_path: Path) -> None:
    ports = {name: str(free_port()) for name in ("KEFU_TEMPORAL_PORT", "KEFU_UI_PORT", "KEFU_CODEC_PORT")}
    env = {**os.environ, **ports, "KEFU_DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}"}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        env["KEFU_API_PORT"] = str(holder.getsockname()[1])
        done = subprocess.run([sys.executable, "worker.py", "--dev", "--api"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: port {env['KEFU_API_PORT']} (HTTP API) is taken; set "
                                                   "KEFU_API_PORT to a free port"), done.stderr
    assert not (tmp_path / "data" / "temporal.db").exists(), "the dev server was started"
