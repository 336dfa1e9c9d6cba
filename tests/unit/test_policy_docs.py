"""docs/policies.md's per-pack tables are the output of its own generator block: they cannot drift from the YAML."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "policies.md"
COMMAND = "sed -n '/^```python policy-tables/,/^```$/p' docs/policies.md | sed '1d;$d' | .venv/bin/python -\n```\n\n"


def test_the_tables_are_what_the_generator_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_POLICY_PATH", raising=False)
    text = DOC.read_text(encoding="utf-8")
    generator = re.search(r"^```python policy-tables\n(.*?)^```$", text, re.S | re.M)
    assert generator is not None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(generator.group(1), f"{DOC}:policy-tables", "exec"), {})
    start = text.index(COMMAND) + len(COMMAND)
    assert text[start:text.index("## Operators' own packs")] == printed.getvalue(), \
        "regenerate the tables: see 'Targets per pack' in docs/policies.md"
