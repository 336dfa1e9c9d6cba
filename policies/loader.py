"""Find, load and validate policy packs (YAML files validated by models.policy.PolicyPack).

Built-in packs live in the project's policies/ directory; KEFU_POLICY_PATH (os.pathsep-separated) adds an
operator's own directories whose packs override built-in ones by id.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from models.errors import one_line
from models.policy import PolicyPack

BUILTIN_DIR = Path(__file__).resolve().parent


class PolicyError(ValueError):
    """A pack that cannot be used; the message names the file, the field and the problem in one line."""


def load_pack(path: Path | str) -> PolicyPack:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: a policy pack must be a mapping at the top level")
    try:
        return PolicyPack.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{path}: {one_line(exc, where='(top level)')}") from exc


def policy_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("KEFU_POLICY_PATH", "").split(os.pathsep) if p]
    return [BUILTIN_DIR, *extra]


def pack_files() -> list[Path]:
    return [f for d in policy_dirs() if d.is_dir() for f in sorted(d.glob("*.yaml"))]


@functools.lru_cache(maxsize=256)
def _load_version(path: str, mtime_ns: int, size: int) -> PolicyPack:
    """A pack file as it is now: re-read only when the file changes (every new request asks for its pack)."""
    return load_pack(path)


def load_all() -> dict[str, PolicyPack]:
    """Every pack by id; a later directory overrides an earlier one. Any invalid pack raises PolicyError."""
    packs: dict[str, PolicyPack] = {}
    for file in pack_files():
        stat = file.stat()
        pack = _load_version(str(file), stat.st_mtime_ns, stat.st_size)
        packs[pack.id] = pack
    return packs


def get_pack(policy_id: str) -> PolicyPack:
    packs = load_all()
    if policy_id not in packs:
        raise PolicyError(f"policy: unknown policy {policy_id!r}; known: {', '.join(sorted(packs))}")
    return packs[policy_id]
