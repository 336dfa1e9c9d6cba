"""`make demo` end to end: every sample completes, the table prints, and a PII scan of the runs finds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_sample_and_leaks_no_pii(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KEFU_CODEC")}
    env.update(PYTHONPATH=str(ROOT), KEFU_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert out.count(": completed (") == 14 and "payloads encrypted with AES-256-GCM" in out
    assert "PII scan of 14 histories, search attributes, memo and the worker log" in out
    assert ": 0 customer names, phones or emails found in clear." in out
    assert (tmp_path / ".data" / "demo.log").stat().st_size > 10_000  # the log was written, at INFO
    assert all(pack in out for pack in ("service_center", "finance", "telecom", "general"))
    assert "BREACH" in out and (tmp_path / ".data" / "demo.db").exists()
    assert "asg:met" in out  # the telecom outage was dispatched from the demo's directory (003 §1.1)
