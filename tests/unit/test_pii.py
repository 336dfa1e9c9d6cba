"""Masking of customer personal data (002 §6.3) and the logging processor that applies it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from domain.pii import mask_contact, mask_email, mask_fields, mask_name, mask_phone, mask_text, scrub
from infra.logconfig import configure_logging, get_logger


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三丰", "张**"), ("张三", "张*"), ("欧阳", "欧*"), ("Alice Smith", "A**** S****"), ("Bo", "B*"), ("李", "*")],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13812345678", "138****5678"), ("138-1234-5678", "138****5678"), ("+8613812345678", "+861******5678")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_mask_email_and_contact() -> None:
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_contact("alice@example.com") == "a***@example.com"
    assert mask_contact("13812345678") == "138****5678"
    assert mask_contact("agent-7") == "agent-7"  # an agent id is not personal data


def test_mask_text_replaces_the_customers_own_data() -> None:
    customer = {"name": "张三丰", "phone": "13812345678", "email": "zsf@wudang.cn"}
    text = "张三丰来电（138 1234 5678），邮箱 ZSF@wudang.cn，要求回电 13812345678。"
    assert mask_text(text, customer) == "张**来电（138****5678），邮箱 z***@wudang.cn，要求回电 138****5678。"
    row = {"customer_name": "Alice Smith", "customer_phone": None, "customer_email": "alice@example.com"}
    assert mask_text("alice smith wrote from alice@example.com", row) == "A**** S**** wrote from a***@example.com"


def test_scrub_leaves_tickets_and_times_alone() -> None:
    text = "KF-20261122-000042 at 2026-11-22T10:00:00+08:00 call 13812345678 or 010-12345678, mail a.b@c.io"
    assert scrub(text) == (
        "KF-20261122-000042 at 2026-11-22T10:00:00+08:00 call 138****5678 or 010****5678, mail a***@c.io"
    )


def test_mask_fields_recurses() -> None:
    event = {"customer": {"name": "张三丰", "phone": "13812345678"}, "customer_email": "a@b.cn", "ticket": "KF-1"}
    assert mask_fields(event) == {
        "customer": {"name": "张**", "phone": "138****5678"},
        "customer_email": "a***@b.cn",
        "ticket": "KF-1",
    }


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_log_lines_are_masked_and_carry_bound_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    log = get_logger("kefu.test")
    with structlog.contextvars.bound_contextvars(request_id="R-1"):
        log.info("customer called 13812345678", customer_name="张三丰", email="alice@example.com")
        logging.getLogger("temporalio.x").warning("retry for alice@example.com")
    log.debug("not shown")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    first, foreign = lines
    assert first["event"] == "customer called 138****5678"
    assert (first["customer_name"], first["email"], first["request_id"]) == ("张**", "a***@example.com", "R-1")
    assert first["timestamp"].endswith("Z") and first["level"] == "info" and first["logger"] == "kefu.test"
    assert foreign["event"] == "retry for a***@example.com" and foreign["request_id"] == "R-1"
