"""Find, load and validate policy packs (YAML files validated by models.policy.PolicyPack).

Built-in packs live in the project's policies/ directory; KEFU_POLICY_PATH (os.pathsep-separated) adds an
operator's own directories whose packs override built-in ones by id.

load_pack raises one PolicyError line (the first problem, and how many more); check_pack lists every problem, one
Problem each (`kefu policy check`).
"""

from __future__ import annotations

import codecs
import functools
import os
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

from models.policy import PolicyPack

BUILTIN_DIR = Path(__file__).resolve().parent
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class PolicyError(ValueError):
    """A pack that cannot be used; the message names the file, the field and the problem in one line."""


class NotText(ValueError):
    """Bytes that are not UTF-8 text; the message says where, never what ('is not UTF-8 text (byte 0xff at …)')."""


def decode_text(data: bytes) -> str:
    """UTF-8 text (a leading BOM is dropped); NotText names the first bad byte and its offset."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        hint = "; it looks like UTF-16: save it as UTF-8" if data[:2] in UTF16_BOMS else ""
        raise NotText(f"is not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}){hint}") from None


class Problem(NamedTuple):
    """One problem of a pack file: `field` is the dotted path ('(top level)' for the whole pack), None for a problem
    with the file itself; `line` (1-based) for YAML syntax errors."""

    file: str
    field: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return self._asdict()


def yaml_problem(file: str, exc: yaml.YAMLError, what: str = "YAML") -> Problem:
    """A YAML syntax error as one Problem at its line (and column): `x.yaml:3: not valid YAML: …`."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"not valid {what}: {problem}" + (f" ({context})" if context else "")
    if mark is None:
        return Problem(file, None, text)
    return Problem(file, None, f"{text} at column {mark.column + 1}", line=mark.line + 1)


def check_pack(path: Path | str) -> tuple[PolicyPack | None, list[Problem]]:
    """The pack, or every problem found: unreadable, not UTF-8, YAML syntax (file:line), then each field that fails
    validation, one Problem each. Cross-field rules (a rule naming an unknown class, …) run once the fields pass."""
    file = str(path)
    try:
        text = decode_text(Path(path).read_bytes())
    except OSError as exc:
        return None, [Problem(file, None, f"cannot read: {exc.strerror}")]
    except NotText as exc:
        return None, [Problem(file, None, str(exc).removeprefix("is "))]
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [yaml_problem(file, exc)]
    if not isinstance(raw, dict):
        return None, [Problem(file, None, "a policy pack must be a mapping at the top level")]
    try:
        return PolicyPack.model_validate(raw), []
    except ValidationError as exc:
        return None, [Problem(file, ".".join(str(part) for part in error["loc"]) or "(top level)",
                              error["msg"].removeprefix("Value error, ")) for error in exc.errors()]


def load_pack(path: Path | str) -> PolicyPack:
    """The pack; PolicyError with one line (the first problem and how many more) otherwise."""
    pack, problems = check_pack(path)
    if pack is None:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PolicyError(f"{problems[0]}{more}")
    return pack


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
