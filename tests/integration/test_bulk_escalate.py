"""Bulk escalation (`kefu escalate-bulk`): rows from an archive filter, one `escalate` signal per matching workflow."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from cli.main import bulk_escalate
from tests.conftest import running_worker
from tests.polling import eventually, wait_for_status
from tests.workflow.helpers import start, status

pytestmark = pytest.mark.integration


async def test_bulk_escalate_raises_every_matching_request(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handles = [(await start(ts_env.client, task_queue, type_hint=kind, description="宽带断线，需要上门维修"))[0]
                   for kind in ("repair", "repair", "inquiry")]
        ids = {(await status(h)).request_id for h in handles[:2]}
        # the projection is written by an activity: wait until the archive shows it
        await eventually(lambda: {r["request_id"] for r in archive.list_requests(request_type="repair")} >= ids)
        rows = [r for r in archive.list_requests(request_type="repair", stage="handling") if r["request_id"] in ids]
        assert len(rows) == 2

        seen: list[tuple[int, int]] = []
        results = await bulk_escalate(ts_env.client, rows, "sup-chen", "backlog review", role="supervisor",
                                      on_progress=lambda done, total: seen.append((done, total)))
        assert [r["ok"] for r in results] == [True, True]
        assert seen[-1] == (2, 2)
        for handle in handles[:2]:
            st = await wait_for_status(handle, lambda s: s.escalation_level >= 1)
            assert st.escalation_level == 1
            assert st.escalations[-1].trigger == "signal" and st.escalations[-1].actor == "sup-chen"
        assert (await status(handles[2])).escalation_level == 0  # not matched, not signalled

        gone = await bulk_escalate(ts_env.client, [{**rows[0], "workflow_id": "kefu-sr-no-such-request"}],
                                   "sup-chen", "backlog review")
        assert gone[0]["ok"] is False and gone[0]["error"]
