"""The audit trail's hash chain: records are not modified or deleted at will (002 §2.4.3), and the operation log
(000 §3.2) can prove it.

Each log (a request's audit_events, an incident's incident_events) is one chain, in the order its rows were
written: a row's `hash` is SHA-256 over the previous row's hash and the row's canonical content, and its `prev_hash`
is that previous hash (GENESIS for the first row). `audit_heads` records each chain's length and last hash, so lines
removed from its end, or appended outside kefu, show too. The archive seals rows at insert time (archive/store.py);
`kefu audit verify` recomputes every chain with verify_chain.

Pure functions over plain rows (mappings of column to value), no SQL: the migration that backfilled the chains
(migrations/versions/0004) uses them too, so this definition of a row's content and hash must never change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

GENESIS = "0" * 64  # the prev_hash of a chain's first row
EARLIEST = datetime.min.replace(tzinfo=UTC)  # task_at of lines written before the chain (migration 0004)
Row = Mapping[str, Any]
Kind = Literal["changed", "removed", "inserted"]


@dataclass(frozen=True)
class Log:
    """One kind of operation log: its name in reports and audit_heads, the column naming its owner, and the columns
    its rows' hashes cover."""

    name: str
    owner: str
    content: tuple[str, ...]


REQUEST_LOG = Log("request", "request_id", ("request_id", "seq", "revision", "at", "actor_id", "actor_role",
                                            "action", "stage", "detail", "rejected"))
INCIDENT_LOG = Log("incident", "incident_id", ("incident_id", "seq", "at", "actor_id", "actor_role", "action",
                                               "detail", "rejected"))
LOGS: dict[str, Log] = {log.name: log for log in (REQUEST_LOG, INCIDENT_LOG)}


@dataclass(frozen=True)
class Head:
    """What audit_heads records of one chain: how many rows it has and its last row's hash."""

    lines: int
    hash: str


EMPTY = Head(0, GENESIS)


# --- content and hash ------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON values as both dialects give them back: an integral float is its integer (PostgreSQL's jsonb keeps 1e20
    as 100000000000000000000), containers recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def utc_iso(moment: datetime) -> str:
    """A time in UTC, ISO 8601; a naive time (SQLite's storage) is UTC already."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat()


def canonical(log: Log, row: Row) -> str:
    """The row's content as canonical JSON: the log's content columns, sorted keys, times in UTC ISO, no spaces."""
    content = {name: row.get(name, 0 if name == "revision" else None) for name in log.content}
    content["at"] = utc_iso(content["at"])
    content["detail"] = _plain(content["detail"] or {})
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link(prev_hash: str, log: Log, row: Row) -> str:
    """SHA-256 (hex) over the previous row's hash and this row's canonical content."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(log, row)}".encode()).hexdigest()


def seal(log: Log, head: Head, rows: Iterable[Row]) -> tuple[list[dict[str, Any]], Head]:
    """The rows, in order, with prev_hash and hash chained on from head; and the chain's new head."""
    sealed: list[dict[str, Any]] = []
    for row in rows:
        digest = link(head.hash, log, row)
        sealed.append({**row, "prev_hash": head.hash, "hash": digest})
        head = Head(head.lines + 1, digest)
    return sealed, head


def same_line(log: Log, a: Row, b: Row) -> bool:
    """The same log line (a replay or a retry), whatever revision either row has."""
    return canonical(log, {**a, "revision": 0}) == canonical(log, {**b, "revision": 0})


def effective(rows: Sequence[Row]) -> Row | None:
    """Of the rows one seq has, the line the trail shows: the one the newest workflow task wrote (task_at), the
    later revision on a tie. Earlier ones stay, superseded."""
    return max(rows, key=lambda r: (r.get("task_at") or EARLIEST, r.get("revision", 0)), default=None)


# --- verification ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Problem:
    """One row of a chain that does not hold: changed, removed, or inserted (out of order, or outside kefu)."""

    log: str
    owner_id: str
    seq: int
    revision: int
    kind: Kind = field(compare=False)
    reason: str = field(compare=False)

    def __str__(self) -> str:
        revision = f" revision {self.revision}" if self.revision else ""
        return f"{self.log} {self.owner_id} seq {self.seq}{revision}: {self.kind}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {"log": self.log, "id": self.owner_id, "seq": self.seq, "revision": self.revision,
                "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class Chain:
    """One verified chain: what verify_chain found, and its head as the rows give it (to anchor elsewhere)."""

    log: str
    owner_id: str
    lines: int
    head: str
    superseded: int
    problems: list[Problem]

    def as_json(self) -> dict[str, Any]:
        return {"log": self.log, "id": self.owner_id, "lines": self.lines, "head": self.head,
                "superseded": self.superseded, "ok": not self.problems}


CHANGED: tuple[Kind, str] = ("changed", "its content does not match its hash (edited, or written with a forged hash)")
CUT: tuple[Kind, str] = ("removed", "the line chained before it is gone (removed, or changed and re-hashed)")
APPENDED: tuple[Kind, str] = ("inserted", "after the chain's recorded head: kefu did not write it")


def verify_chain(log: Log, owner_id: str, rows: Sequence[Row], head: Head | None) -> Chain:
    """Recompute one chain. rows: every row of the owner, in the order they were written (id order); head: its
    audit_heads record (None when there is none). One Problem per row that does not hold, and one per missing seq
    or revision."""
    found: dict[int, tuple[Kind, str]] = {}  # row index -> what is wrong with it
    index_of = {row["hash"]: i for i, row in enumerate(rows) if row.get("hash")}
    followed = {row.get("prev_hash") for row in rows}  # the hashes some row is chained after
    end = _head_index(rows, head)
    expected = GENESIS  # the hash of the last row accepted into the chain
    for i, row in enumerate(rows):
        stored, prev = row.get("hash"), row.get("prev_hash")
        if end is not None and i > end:
            found[i] = APPENDED
            continue
        if not stored or not prev:
            found[i] = ("inserted", "it has no hash: kefu did not write it")
            continue
        if link(prev, log, row) != stored:
            found[i] = CHANGED
        if prev != expected:
            before = -1 if prev == GENESIS else index_of.get(prev)
            if before is None:
                found.setdefault(i, CUT)
            elif before > i:
                found[i] = ("inserted", "out of order: it is chained after a later line")
                continue
            elif stored in followed or i == end:  # the chain goes on from it: the rows written in between are off it
                for skipped in range(before + 1, i):
                    found[skipped] = ("inserted", "out of order: no line is chained after it")
            else:
                found[i] = ("inserted", "out of order: it is chained after an earlier line, and nothing after it")
                continue
        expected = stored
    gaps = _gaps(log, owner_id, rows)
    problems = [_problem(log, owner_id, rows[i], kind, reason) for i, (kind, reason) in found.items()
                if (kind, reason) != CUT or not _explained(rows, i, gaps)]
    problems += gaps + _end(log, owner_id, rows, head, found)
    last = (rows[-1].get("hash") or "") if rows else GENESIS
    superseded = len(rows) - len({row["seq"] for row in rows})
    return Chain(log.name, owner_id, len(rows), last, superseded, sorted(problems))


def _problem(log: Log, owner_id: str, row: Row, kind: Kind, reason: str) -> Problem:
    return Problem(log.name, owner_id, int(row["seq"]), int(row.get("revision") or 0), kind, reason)


def _explained(rows: Sequence[Row], i: int, gaps: Sequence[Problem]) -> bool:
    """Row i's broken link is said already: a (seq, revision) missing between the row written before it and itself."""
    def place(row: Row) -> tuple[int, int]:
        return int(row["seq"]), int(row.get("revision") or 0)

    low, high = sorted((place(rows[i - 1]) if i else (-1, 0), place(rows[i])))
    return any(low < (gap.seq, gap.revision) < high for gap in gaps)


def _gaps(log: Log, owner_id: str, rows: Sequence[Row]) -> list[Problem]:
    """Seqs run 0, 1, 2, … per log (000 §3.2) and revisions 0, 1, … per seq: a missing one was removed."""
    revisions: dict[int, set[int]] = {}
    for row in rows:
        revisions.setdefault(int(row["seq"]), set()).add(int(row.get("revision") or 0))
    gaps = [Problem(log.name, owner_id, seq, 0, "removed", "no line has this seq")
            for seq in range(max(revisions, default=-1)) if seq not in revisions]
    return gaps + [Problem(log.name, owner_id, seq, r, "removed", "no line has this revision")
                   for seq, present in revisions.items() for r in range(max(present)) if r not in present]


def _head_index(rows: Sequence[Row], head: Head | None) -> int | None:
    """The index of the row audit_heads records as the chain's last (-1: none yet); None when no row is it."""
    if head is None:
        return None
    if head.lines == 0:
        return -1
    return next((i for i, row in enumerate(rows) if row.get("hash") == head.hash), None)


def _end(log: Log, owner_id: str, rows: Sequence[Row], head: Head | None,
         found: Mapping[int, tuple[Kind, str]]) -> list[Problem]:
    """The chain's end against audit_heads when the row it records as the last is not there: lines removed from
    the end, or the last line re-hashed."""
    kept = [i for i in range(len(rows)) if found.get(i, CUT)[0] != "inserted"]  # rows in the chain
    if head is None:
        return [_problem(log, owner_id, rows[-1], "removed", "the chain's head record (audit_heads) is missing")
                ] if rows else []
    if _head_index(rows, head) is not None:
        return []
    if len(kept) < head.lines:
        seq = int(rows[kept[-1]]["seq"]) + 1 if kept else 0
        return [Problem(log.name, owner_id, seq, 0, "removed", f"the chain's head records {head.lines} lines and "
                        f"{len(kept)} remain: lines at its end were removed")]
    if kept[-1] in found:
        return []  # the last row's own problem says it
    return [_problem(log, owner_id, rows[kept[-1]], "changed", "the chain's head records another hash for its last "
                     "line")]
