"""Find, load and validate policy packs (YAML files validated by models.policy.PolicyPack).

Built-in packs live in the project's policies/ directory; KEFU_POLICY_PATH (os.pathsep-separated) adds an
operator's own directories whose packs override built-in ones by id.

Jurisdiction calendars (holidays and 调休, SEEDS §4.4) live once in a calendars/ folder of those directories
(policies/calendars/cn.yaml); a pack names one (`calendar: {ref: cn, working_hours: …}`) and the loader resolves
it into the pack's CalendarSpec, so a loaded pack is complete data. A later directory's calendar of the same id
wins, as packs do: an operator can drop in next year's schedule before a release carries it.

load_pack raises one PolicyError line (the first problem, and how many more); check_pack lists every problem, one
Problem each (`kefu policy check`).
"""

from __future__ import annotations

import codecs
import functools
import os
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ValidationError

from models.policy import JurisdictionCalendar, PolicyPack

BUILTIN_DIR = Path(__file__).resolve().parent
CALENDARS = "calendars"  # the sub-directory of a policy directory that holds jurisdiction calendars
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# With `ref`, these come from the jurisdiction calendar only; a pack adds days off as `closures`.
FROM_CALENDAR = ("holidays", "makeup_days", "covers", "version", "source")
COVERAGE_WARN_DAYS = 60  # doctor and the worker warn this long before a calendar's official schedules end
Model = TypeVar("Model", bound=BaseModel)


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


def _read_mapping(path: Path | str, what: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The YAML mapping of a file, or the one problem that stops reading it (unreadable, not UTF-8, syntax)."""
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
        return None, [Problem(file, None, f"{what} must be a mapping at the top level")]
    return raw, []


def _validated(model: type[Model], raw: dict[str, Any], file: str) -> tuple[Model | None, list[Problem]]:
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, [Problem(file, ".".join(str(part) for part in error["loc"]) or "(top level)",
                              error["msg"].removeprefix("Value error, ")) for error in exc.errors()]


def check_calendar(path: Path | str) -> tuple[JurisdictionCalendar | None, list[Problem]]:
    """A jurisdiction calendar file (policies/calendars/<id>.yaml), or every problem found; its id is its name."""
    raw, problems = _read_mapping(path, "a calendar")
    if raw is None:
        return None, problems
    calendar, problems = _validated(JurisdictionCalendar, raw, str(path))
    if calendar is not None and calendar.id != Path(path).stem:
        return None, [Problem(str(path), "id", f"{calendar.id!r} differs from the file name {Path(path).stem!r}")]
    return calendar, problems


@functools.lru_cache(maxsize=64)
def _calendar_version(path: str, mtime_ns: int, size: int) -> tuple[JurisdictionCalendar | None, list[Problem]]:
    return check_calendar(path)


def calendar_files(also: Path | None = None) -> dict[str, Path]:
    """Jurisdiction calendars by id: the calendars/ folder of every policy directory, then of ``also`` (the folder
    of a pack being checked); a later one of the same id wins."""
    dirs = policy_dirs()
    if also is not None and also.resolve() not in {d.resolve() for d in dirs}:
        dirs.append(also)
    return {f.stem: f for d in dirs if (d / CALENDARS).is_dir() for f in sorted((d / CALENDARS).glob("*.yaml"))}


def _resolve_calendar(raw: dict[str, Any], file: str, calendars: Mapping[str, Path]) -> list[Problem]:
    """Replace a pack's `calendar: {ref: …}` by the full spec: the jurisdiction's time zone, weekly pattern,
    holidays, 调休 and coverage, then the pack's own working hours, closures and (if given) weekdays or zone."""
    given = raw.get("calendar")
    if not isinstance(given, dict) or "ref" not in given:
        return []  # a pack's own list (or no calendar at all): validation says what is wrong
    ref = given["ref"]
    clashing = [Problem(file, f"calendar.{key}", f"comes from calendar {ref!r}; a pack adds its own days off as "
                        "closures") for key in FROM_CALENDAR if key in given]
    if clashing:
        return clashing
    path = calendars.get(str(ref))
    if path is None:
        known = ", ".join(sorted(calendars)) or "none"
        return [Problem(file, "calendar.ref", f"unknown calendar {ref!r}; known: {known} (in {CALENDARS}/ of a "
                        "policy directory)")]
    jurisdiction, problems = _calendar_version(*_stamp(path))
    if jurisdiction is None:
        return problems
    raw["calendar"] = {**jurisdiction.spec_fields(), **given}
    return []


def check_pack(path: Path | str) -> tuple[PolicyPack | None, list[Problem]]:
    """The pack, or every problem found: unreadable, not UTF-8, YAML syntax (file:line), its calendar reference,
    then each field that fails validation, one Problem each. Cross-field rules (a rule naming an unknown class, …)
    run once the fields pass."""
    file = str(path)
    raw, problems = _read_mapping(path, "a policy pack")
    if raw is None:
        return None, problems
    problems = _resolve_calendar(raw, file, calendar_files(Path(path).parent))
    if problems:
        return None, problems
    return _validated(PolicyPack, raw, file)


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


def _stamp(file: Path) -> tuple[str, int, int]:
    stat = file.stat()
    return str(file), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=256)
def _load_version(pack: tuple[str, int, int], calendars: tuple[tuple[str, int, int], ...]) -> PolicyPack:
    """A pack file as it is now: re-read only when it or a calendar changes (every new request asks for its pack)."""
    return load_pack(pack[0])


def load_all() -> dict[str, PolicyPack]:
    """Every pack by id; a later directory overrides an earlier one. Any invalid pack raises PolicyError."""
    calendars = tuple(_stamp(f) for f in calendar_files().values())
    packs: dict[str, PolicyPack] = {}
    for file in pack_files():
        pack = _load_version(_stamp(file), calendars)
        packs[pack.id] = pack
    return packs


def get_pack(policy_id: str) -> PolicyPack:
    packs = load_all()
    if policy_id not in packs:
        raise PolicyError(f"policy: unknown policy {policy_id!r}; known: {', '.join(sorted(packs))}")
    return packs[policy_id]


def _uses_business_time(pack: PolicyPack) -> bool:
    clocks = [c for cls in pack.classes.values() for c in cls.clocks.values()]
    clocks += [c for override in pack.channel_overrides.values() for c in override.clocks.values()]
    return any(c.calendar == "business" for c in clocks)


def coverage_warnings(packs: Mapping[str, PolicyPack], now: datetime,
                      within_days: int = COVERAGE_WARN_DAYS) -> list[str]:
    """One line per calendar whose official schedules (holidays and 调休) end within ``within_days`` of ``now`` or
    have ended, naming the packs that use it, and one per pack counting working days on a calendar that states no
    coverage: deadlines past the end are provisional (statutory holidays only) until the next notice is loaded."""
    users: dict[tuple[str, date, str], list[str]] = {}  # (calendar, last covered day, zone) -> pack ids
    lines = []
    for pack in sorted(packs.values(), key=lambda p: p.id):
        spec = pack.calendar
        if spec.covers is None:
            if _uses_business_time(pack):
                lines.append(f"pack {pack.id}: its calendar lists its own holidays and says nothing of the years it "
                             "covers, so it cannot warn when they run out (use calendar.ref: docs/policies.md)")
            continue
        users.setdefault((spec.key or f"of pack {pack.id}", spec.covers.last, spec.timezone), []).append(pack.id)
    for (name, last, zone), ids in users.items():
        left = (last - now.astimezone(ZoneInfo(zone)).date()).days
        if left > within_days:
            continue
        state = f"ran out on {last}" if left < 0 else f"covers official schedules until {last} ({left} days left)"
        lines.append(f"calendar {name} {state}, used by {', '.join(ids)}: deadlines after it are provisional "
                     f"(statutory holidays only, no 调休) until the {last.year + 1} schedule is loaded "
                     "(docs/policies.md#calendars)")
    return lines
