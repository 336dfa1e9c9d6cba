"""The packages' import rules (issue 13), as their docstrings and docs/architecture.md state them: models/ is pure
data, domain/ pure rules, archive/ SQL only, activities/ the I/O the workflows ask for; imports point down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package → our top-level packages it may import (besides itself): archive/directory.py ranks candidates with the
# pure domain.assignment inside its locking transaction, archive/migrate.py finds its Alembic scripts.
# docs/architecture.md draws these.
ALLOWED: dict[str, set[str]] = {"archive": {"models", "infra", "domain", "migrations"}, "models": set(),
                                 "activities": {"archive", "domain", "models", "infra", "policies"},
                                 "domain": {"models"}, "policies": {"models"}, "reports": {"models", "domain"},
                                 "infra": {"models", "domain"},
                                 "workflows": {"activities", "domain", "models", "infra"},
                                 # the HTTP front door: cli-free (the CLI imports its shared operations instead)
                                 "api": {"infra", "archive", "models", "domain", "reports", "policies", "workflows"}}
OURS = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()} - {"tests"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_its_docstring_allows(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        stray = (_imports(path) & OURS) - ALLOWED[package] - {package}
        assert not stray, f"{path.relative_to(ROOT)} imports {sorted(stray)}"


@pytest.mark.parametrize("package", ["domain", "models", "archive"])
def test_rules_data_and_sql_know_nothing_of_temporal(package: str) -> None:
    """The aggregate and the messages are plain Python: unit-testable without a Temporal server."""
    for path in sorted((ROOT / package).glob("*.py")):
        assert "temporalio" not in _imports(path), f"{path.relative_to(ROOT)} imports temporalio"
