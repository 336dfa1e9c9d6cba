"""Policy versions pinned per request, explicit re-evaluation, and a deadline spanning holidays."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from policies.loader import BUILTIN_DIR
from tests.conftest import running_worker
from tests.workflow.helpers import act, start, status

SHANGHAI = ZoneInfo("Asia/Shanghai")


def operator_pack(directory: Path, **changes: Any) -> None:
    """An operator's own service_center pack (KEFU_POLICY_PATH overrides the built-in one by id)."""
    pack = yaml.safe_load((BUILTIN_DIR / "service_center.yaml").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        node = pack
        *path, last = dotted.split(".")
        for key in path:
            node = node[key]
        node[last] = value
    (directory / "service_center.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")


async def test_request_keeps_its_version_until_reevaluated(ts_env: WorkflowEnvironment, archive: Archive,
                                                           task_queue: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, before = await start(ts_env.client, task_queue)
        assert before.policy_version == 1
        await act(handle, "respond", message="您好")
        # the center edits its pack: handling 24 h → 12 h, version 2
        operator_pack(tmp_path, version=2, **{"classes.normal.clocks.handling.target": "12h"})
        monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))
        _, newer = await start(ts_env.client, task_queue)
        assert newer.policy_version == 2 and newer.clocks["handling"].target_seconds == 12 * 3600
        pinned = await status(handle)
        assert pinned.policy_version == 1 and pinned.clocks["handling"].target_seconds == 24 * 3600
        with pytest.raises(WorkflowUpdateFailedError):  # an agent may not move a request to a new version
            await act(handle, "reevaluate", reason="new SLA")
        moved = await act(handle, "reevaluate", actor="sup-chen", role="supervisor", reason="center adopts v2")
    assert moved.policy_version == 2
    assert moved.clocks["handling"].deadline == moved.clocks["handling"].started_at + timedelta(hours=12)
    trail = [e for e in archive.audit_trail(moved.request_id) if e["action"] == "reevaluate"]
    assert trail[-1]["detail"]["before"] == "service_center@v1" and trail[-1]["detail"]["after"] == "service_center@v2"


async def test_closure_deadline_skips_holidays_and_counts_makeup_days(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    today = (await ts_env.get_current_time()).astimezone(SHANGHAI).date()
    holidays = [today + timedelta(days=n) for n in range(1, 8)]  # a week off from tomorrow, like 国庆
    makeup = today + timedelta(days=8) if (today + timedelta(days=8)).isoweekday() > 5 else None
    # An operator's pack listing its own holidays instead of `ref: cn` (docs/policies.md#calendars).
    operator_pack(tmp_path, version=3, calendar={
        "working_hours": [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "18:00"}],
        "holidays": [d.isoformat() for d in holidays], "makeup_days": [makeup.isoformat()] if makeup else []})
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))
    async with running_worker(ts_env, archive, task_queue):
        _, st = await start(ts_env.client, task_queue)
    closure = st.clocks["closure"]
    due: date = closure.deadline.astimezone(SHANGHAI).date()
    assert closure.calendar == "business" and st.policy_version == 3
    assert due > holidays[-1]  # 3 working days (002 §2.1.3) cannot end inside the holiday week
    local = closure.deadline.astimezone(SHANGHAI)
    assert (local.hour, local.minute) <= (18, 0) and (local.hour, local.minute) >= (9, 0)


async def test_channel_override_sets_the_first_response_target(ts_env: WorkflowEnvironment, archive: Archive,
                                                               task_queue: str) -> None:
    """001 Ch3: online chat is a core channel with its own (shorter) response limit in the general pack."""
    async with running_worker(ts_env, archive, task_queue):
        _, chat = await start(ts_env.client, task_queue, policy="general", channel="chat")
        _, phone = await start(ts_env.client, task_queue, policy="general", channel="phone")
    assert chat.clocks["first_response"].target_seconds == 60
    assert phone.clocks["first_response"].target_seconds == 5 * 60
