"""What a request's transitions leave to write: audit events (000 §3.2) and customer/internal notices. Pure.

The aggregate appends here; the workflow flushes the buffer to the archive in order, one write per workflow task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.intake import Language
from models.records import Audience, AuditEvent, Notice, TemplateName


@dataclass(frozen=True)
class Effects:
    """The audit events and notices one call produced."""

    events: list[AuditEvent] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


class Outbox:
    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.seq = 0
        self.events: list[AuditEvent] = []
        self.notices: list[Notice] = []
        self.notice_counts: dict[str, int] = {}  # notices queued per template, audience and recipient
        self.final_pending = False  # the archive keeps the final record with its retention date (002 §2.4.2)

    @property
    def pending(self) -> bool:
        return bool(self.events or self.notices or self.final_pending)

    def mark(self) -> tuple[int, int]:
        return len(self.events), len(self.notices)

    def since(self, mark: tuple[int, int]) -> Effects:
        return Effects(events=self.events[mark[0]:], notices=self.notices[mark[1]:])

    def record(self, at: datetime, actor_id: str, actor_role: str, action: str, stage: str, rejected: bool,
               detail: dict[str, Any]) -> int:
        """Append an audit event (000 §3.2: time, operator, content); returns its sequence number."""
        seq, self.seq = self.seq, self.seq + 1
        self.events.append(AuditEvent(request_id=self.request_id, seq=seq, at=at, actor_id=actor_id,
                                      actor_role=actor_role, action=action, stage=stage, detail=detail,
                                      rejected=rejected))
        return seq

    def notify(self, template: TemplateName, audience: Audience, recipient: str, language: Language,
               context: dict[str, Any]) -> None:
        """Queue a notice. Its key (request, template, audience, recipient, n-th such notice) makes it send once
        across activity retries and replays, and also when a failed workflow task's retry numbers the audit events
        differently (a signal ordered first): the n-th progress notice stays the n-th."""
        kind = f"{template}:{audience}:{recipient}"
        self.notice_counts[kind] = self.notice_counts.get(kind, 0) + 1
        self.notices.append(Notice(key=f"{self.request_id}:{kind}:{self.notice_counts[kind]}",
                                   request_id=self.request_id, template=template, audience=audience,
                                   recipient=recipient, language=language, context=context))

    def take(self) -> tuple[list[AuditEvent], list[Notice], bool] | None:
        """Everything pending, in order, and the buffer emptied; None when nothing is pending."""
        if not self.pending:
            return None
        taken = self.events, self.notices, self.final_pending
        self.events, self.notices, self.final_pending = [], [], False
        return taken
