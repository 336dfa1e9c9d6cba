"""Notification rendering for the outbox: Jinja2 text templates per language, resolved to a channel and address.

Every customer-facing message states the problem, the progress, the estimated resolution time and the next step
(003 §2.3); the acknowledgement carries the work-order number and the expected completion (002 §2.1.2).
With KEFU_PUBLIC_URL set (the API's address), the resolution and revisit notices carry `link`: the customer's
signed, expiring link to answer that one question (infra/issuer.py, the API's /c/{token}); without it `link` is
None and the templates leave it out. The activities render a transition's notices before the archive's transaction
(archive/ only writes rows) and log the newly queued ones after it. Imports domain.pii, infra and models.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, UndefinedError, meta

from domain.pii import mask_contact
from infra.issuer import Issuer, Question, issuer_from_env
from infra.logconfig import get_logger
from models.records import Notice, NoticeChannel, Outgoing, RenderedNotice

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
log = get_logger(__name__)

# Codes the workflow puts in context, shown in words (SEEDS §3 types, DESIGN clock and trigger names).
LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "inquiry": "咨询",
        "complaint": "投诉",
        "suggestion": "建议",
        "repair": "报修",
        "transaction": "业务办理",
        "first_response": "首次响应",
        "handling": "处理",
        "closure": "办结",
        "revisit": "回访",
        "assignment": "派单",
        "grade": "投诉等级",
        "breach": "处理超时",
        "signal": "主管升级",
        "ack_timeout": "升级后未及时确认",
        "customer_rejected": "客户不认可处理结果",
    },
    "en": {
        "inquiry": "inquiry",
        "complaint": "complaint",
        "suggestion": "suggestion",
        "repair": "repair request",
        "transaction": "service transaction",
        "first_response": "first response",
        "handling": "handling",
        "closure": "closure",
        "revisit": "revisit",
        "assignment": "assignment",
        "grade": "complaint grade",
        "breach": "deadline breached",
        "signal": "supervisor escalation",
        "ack_timeout": "escalation not acknowledged in time",
        "customer_rejected": "customer rejected the resolution",
    },
}
TIME_FORMATS: dict[str, str] = {"zh-CN": "%Y年%m月%d日 %H:%M", "en": "%d %b %Y %H:%M"}
# Customer notices that ask a question: the question a link answers, and the context key of its deadline.
ASKS: dict[str, tuple[Question, str]] = {"resolution": ("confirm", "confirm_by"), "revisit": ("survey", "survey_until")}


class TemplateContextError(ValueError):
    """A template needs a context key the notice does not carry."""


def _percent(fraction: float) -> str:
    return f"{round(float(fraction) * 100)}%"


class Notifier:
    """Renders notices; `display_tz` is the zone times are shown in (the service center's, Asia/Shanghai)."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR, display_tz: str = "Asia/Shanghai",
                 issuer: Issuer | None = None) -> None:
        self._dir = templates_dir
        self._tz = ZoneInfo(display_tz)
        # signs customer links: loaded at start when links are on, so a missing or loose key stops the worker
        # rather than every notice (KEFU_ISSUER_KEY_FILE)
        self._issuer = issuer or (issuer_from_env() if os.environ.get("KEFU_PUBLIC_URL", "").strip() else None)

    def render(self, notice: Notice, contact: Mapping[str, Any]) -> RenderedNotice:
        """Render `notice` for the request `contact` (archive/store.py CONTACT_COLUMNS, as Archive.notice_contact
        returns: ticket, request_type, priority, customer_name, customer_phone, customer_email). The notice's own
        context wins over those."""
        channel, recipient = self._address(notice, contact)
        context = {
            "ticket": contact.get("ticket"),
            "request_type": contact.get("request_type"),
            "priority": contact.get("priority"),
            "customer_name": contact.get("customer_name"),
            "link": self.link(notice),
            **notice.context,
        }
        template, required = self._template(notice.language, notice.template)
        where = f"template {notice.language}/{notice.template}"
        if missing := sorted(required - context.keys()):
            raise TemplateContextError(f"{where}: missing context key(s) {', '.join(missing)}")
        try:
            text = template.render(context)
        except UndefinedError as exc:  # e.g. an attribute of a context value
            raise TemplateContextError(f"{where}: {exc.message}") from exc
        subject, _, body = text.strip().partition("\n")
        if not subject.strip() or not body.startswith("\n") or not body.strip():
            raise ValueError(f"{where}: needs a subject line, a blank line, then the body")
        return RenderedNotice(subject=subject.strip(), body=body.strip() + "\n", channel=channel, recipient=recipient)

    def link(self, notice: Notice) -> str | None:
        """The customer's link for the question this notice asks, valid until its deadline; None when the notice
        asks nothing or KEFU_PUBLIC_URL is unset. Stable for one notice (retried renderings agree)."""
        public = os.environ.get("KEFU_PUBLIC_URL", "").strip().rstrip("/")
        asks = ASKS.get(notice.template)
        if not public or asks is None or notice.audience != "customer":
            return None
        question, deadline = asks
        until = datetime.fromisoformat(str(notice.context[deadline]))
        if self._issuer is None:
            self._issuer = issuer_from_env()
        return f"{public}/c/{self._issuer.link(notice.request_id, question, until, nonce=notice.key)}"

    def render_all(self, notices: Iterable[Notice], contact: Mapping[str, Any]) -> list[Outgoing]:
        """Each notice with its message, in order, all for one contact."""
        return [(notice, self.render(notice, contact)) for notice in notices]

    def queued_all(self, queued: Sequence[Outgoing]) -> int:
        """Log the notices a committed transaction newly queued; returns how many."""
        for notice, rendered in queued:
            self.queued(notice, rendered)
        return len(queued)

    def queued(self, notice: Notice, rendered: RenderedNotice) -> None:
        """Log a notice that entered the outbox; the address is masked (002 §6.3)."""
        log.info(
            "notice queued",
            request_id=notice.request_id,
            key=notice.key,
            template=notice.template,
            audience=notice.audience,
            channel=rendered.channel,
            recipient=mask_contact(rendered.recipient),
        )

    @staticmethod
    def _address(notice: Notice, contact: Mapping[str, Any]) -> tuple[NoticeChannel, str]:
        if notice.audience != "customer":
            return "internal", notice.recipient
        if phone := contact.get("customer_phone"):
            return "sms", phone
        if email := contact.get("customer_email"):
            return "email", email
        raise ValueError(f"request {notice.request_id} has no customer phone or email for notice {notice.key}")

    def _template(self, language: str, name: str) -> tuple[Template, frozenset[str]]:
        return _load(self._dir, language, name, self._tz)


@cache
def _environment(templates_dir: Path, language: str, tz: ZoneInfo) -> Environment:
    labels = LABELS[language]
    time_format = TIME_FORMATS[language]

    def label(code: str | None) -> str:
        return labels.get(code, code) if code else ""

    def when(value: datetime | str | None) -> str:
        """A deadline as the customer reads it, in the center's zone; free text (an ETA as said) passes through."""
        if value is None:
            return ""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if value.tzinfo is None:
            return value.strftime(time_format)
        local = value.astimezone(tz)
        if language == "zh-CN" and tz.key == "Asia/Shanghai":
            return f"{local.strftime(time_format)}（北京时间）"
        offset = local.strftime("%z")
        return f"{local.strftime(time_format)} (UTC{offset[:3]}:{offset[3:]})"

    env = Environment(
        loader=FileSystemLoader(templates_dir / language),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(label=label, when=when, percent=_percent)
    return env


@cache
def _load(templates_dir: Path, language: str, name: str, tz: ZoneInfo) -> tuple[Template, frozenset[str]]:
    """The template and the context keys it reads (they must be present; their values may be None)."""
    env = _environment(templates_dir, language, tz)
    source, _, _ = env.loader.get_source(env, f"{name}.txt.j2")  # type: ignore[union-attr]
    required = meta.find_undeclared_variables(env.parse(source)) - set(env.globals)
    return env.get_template(f"{name}.txt.j2"), frozenset(required)
