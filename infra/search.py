"""Typed search attribute keys, defined once for the workflow, the worker, the tests and the dev-server command.

Never customer PII: search attributes are not encrypted (DESIGN.md).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("KefuStage")
REQUEST_TYPE = SearchAttributeKey.for_keyword("KefuRequestType")
PRIORITY = SearchAttributeKey.for_keyword("KefuPriority")
COMPLAINT_GRADE = SearchAttributeKey.for_keyword("KefuComplaintGrade")
ESCALATION_LEVEL = SearchAttributeKey.for_int("KefuEscalationLevel")
OWNER = SearchAttributeKey.for_keyword("KefuOwner")
POLICY = SearchAttributeKey.for_keyword("KefuPolicy")
BREACHED = SearchAttributeKey.for_bool("KefuBreached")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("KefuNextDeadline")

ALL = (STAGE, REQUEST_TYPE, PRIORITY, COMPLAINT_GRADE, ESCALATION_LEVEL, OWNER, POLICY, BREACHED, NEXT_DEADLINE)
