"""`kefu doctor`'s calendars check (issue 16): a warning 60 days before a calendar's official schedules run out,
healthy otherwise, a failure when the packs do not load. The other checks need a server: tests/integration."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli import doctor


@pytest.fixture(autouse=True)
def _no_operator_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_POLICY_PATH", raising=False)


def test_warns_within_60_days_of_the_end_of_coverage_and_stays_healthy() -> None:
    check = doctor.check_calendars(datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    assert check.ok and check.warn and doctor.healthy([check])
    assert check.message.startswith("calendar cn@v1 covers official schedules until 2026-12-31 (30 days left)")
    assert doctor.render([check]).startswith("WARN calendars  calendar cn@v1")
    assert "\n" not in check.message


def test_quiet_when_coverage_reaches_far_enough() -> None:
    check = doctor.check_calendars(datetime(2026, 10, 1, tzinfo=UTC))
    assert check == doctor.Check("calendars", True, "official schedules known: cn@v1 until 2026-12-31")
    assert doctor.render([check]).startswith("ok   calendars")


def test_fails_when_the_packs_do_not_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))
    check = doctor.check_calendars(datetime(2026, 10, 1, tzinfo=UTC))
    assert not check.ok and not check.warn and "policy packs do not load" in check.message
    assert doctor.render([check]).startswith("FAIL calendars")
