"""Notice templates (zh-CN, en): every one renders; the acknowledgement carries ticket and expected completion."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from structlog.testing import capture_logs

from activities.notify import Notifier, TemplateContextError
from models.records import Notice, TemplateName

CONTACT: dict[str, Any] = {
    "ticket": "KF-20261122-000042",
    "request_type": "complaint",
    "priority": "urgent",
    "customer_name": "张三丰",
    "customer_phone": "13812345678",
    "customer_email": "zsf@wudang.cn",
}
SAMPLES: dict[str, dict[str, Any]] = {
    "acknowledgement": {"expected_completion": "2026-11-23T10:00:00+00:00"},
    "progress": {"text": "工程师已上门检测线路", "eta": None},
    "extension": {"new_deadline": "2026-11-25T10:00:00+08:00", "reason": "需第三方配合", "notice": None},
    "escalation": {
        "level": 2,
        "title": "值班主管",
        "reason": "客户多次来电",
        "trigger": "breach",
        "attributed_to": "a-7",
    },
    "warning": {"clock": "handling", "fraction": 0.8, "deadline": "2026-11-22T18:00:00+08:00"},
    "resolution": {"summary": "已更换光猫，网络恢复", "confirm_by": "2026-11-29T10:00:00+08:00"},
    "revisit": {"survey_until": "2026-12-01T10:00:00+08:00", "scale_max": 5},
    "incident": {"incident_id": "INC-20261122-01", "title": "核心系统故障", "kind": "progress",
                 "text": "系统已切换至备用线路，交易逐步恢复"},
    "assignment": {"accept_by": "2026-11-22T10:15:00+08:00", "team": "network"},
}
NOTIFIER = Notifier()


def notice(template: str, language: str = "zh-CN", audience: str = "customer", **context: Any) -> Notice:
    return Notice(
        key=f"R-1:{template}",
        request_id="R-1",
        template=template,  # type: ignore[arg-type]
        audience=audience,  # type: ignore[arg-type]
        recipient="customer" if audience == "customer" else "sup-1",
        language=language,  # type: ignore[arg-type]
        context=SAMPLES[template] | context,
    )


def test_samples_cover_every_template() -> None:
    assert set(SAMPLES) == set(get_args(TemplateName))


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("template", sorted(SAMPLES))
def test_every_template_renders(template: str, language: str) -> None:
    rendered = NOTIFIER.render(notice(template, language), CONTACT)
    assert rendered.subject and "\n" not in rendered.subject
    assert CONTACT["ticket"] in rendered.subject + rendered.body
    assert "None" not in rendered.body and "{{" not in rendered.body


def test_acknowledgement_carries_ticket_and_expected_completion() -> None:
    zh = NOTIFIER.render(notice("acknowledgement"), CONTACT)  # 002 §2.1.2
    assert "KF-20261122-000042" in zh.body and "2026年11月23日 18:00（北京时间）" in zh.body
    assert "尊敬的张三丰" in zh.body and "投诉" in zh.subject  # the message itself is not masked
    en = NOTIFIER.render(notice("acknowledgement", "en"), CONTACT)
    assert "KF-20261122-000042" in en.body and "23 Nov 2026 18:00 (UTC+08:00)" in en.body


def test_optional_values_and_labels() -> None:
    progress = NOTIFIER.render(notice("progress", eta="明天下午"), CONTACT)
    assert "预计完成时间：明天下午" in progress.body  # a spoken ETA passes through as said
    warning = NOTIFIER.render(notice("warning", "en", audience="owner"), CONTACT)
    assert "80%" in warning.subject and "handling" in warning.subject
    escalation = NOTIFIER.render(notice("escalation", attributed_to=None), CONTACT)
    assert "处理超时" in escalation.body and "责任人" not in escalation.body


def test_addresses() -> None:
    by_sms = NOTIFIER.render(notice("progress"), CONTACT)
    assert (by_sms.channel, by_sms.recipient) == ("sms", "13812345678")
    by_mail = NOTIFIER.render(notice("progress"), CONTACT | {"customer_phone": None})
    assert (by_mail.channel, by_mail.recipient) == ("email", "zsf@wudang.cn")
    internal = NOTIFIER.render(notice("escalation", audience="escalation"), CONTACT)
    assert (internal.channel, internal.recipient) == ("internal", "sup-1")
    with pytest.raises(ValueError, match="no customer phone or email"):
        NOTIFIER.render(notice("progress"), CONTACT | {"customer_phone": None, "customer_email": None})


def test_missing_context_key_names_template_and_key() -> None:
    incomplete = notice("warning", "en").model_copy(update={"context": {"clock": "handling", "fraction": 0.5}})
    with pytest.raises(TemplateContextError, match=r"template en/warning: missing context key\(s\) deadline"):
        NOTIFIER.render(incomplete, CONTACT)


def test_queued_log_masks_the_recipient() -> None:
    rendered = NOTIFIER.render(notice("progress"), CONTACT)
    with capture_logs() as logs:
        NOTIFIER.queued(notice("progress"), rendered)
    assert logs[0]["recipient"] == "138****5678" and logs[0]["request_id"] == "R-1"
    assert logs[0]["log_level"] == "info"
