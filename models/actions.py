"""Messages agents, supervisors and customers send to a running request.

Update `act` carries one agent action; updates `confirm` and `survey` come from the customer side; signal
`escalate` comes from supervisors (it cannot answer, so a refused one is recorded as rejected).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.intake import RequestType

Role = Literal["customer", "agent", "team_lead", "supervisor", "manager", "system"]
ROLE_RANK: dict[str, int] = {"customer": 0, "agent": 1, "team_lead": 2, "supervisor": 3, "manager": 4, "system": 5}
# 003 §3.3: departments a case is transferred to; 000 §2.2: the business department for funds at risk.
Department = Literal[
    "customer_service", "technical", "operations", "finance", "marketing", "account_manager", "third_party", "network",
    "business",
]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Actor(_Msg):
    id: str = Field(min_length=1, max_length=64)
    role: Role


class Respond(_Msg):
    """Accept the case and give the first response (stops the first-response clock, 000 §3.1 先受理)."""

    kind: Literal["respond"] = "respond"
    message: str = Field(min_length=1, max_length=4000)


class Note(_Msg):
    """Progress note; customer_visible also sends the customer a progress notice (003 §2.4)."""

    kind: Literal["note"] = "note"
    text: str = Field(min_length=1, max_length=4000)
    customer_visible: bool = False
    eta: str | None = Field(default=None, max_length=200, description="estimated resolution time stated (003 §2.3)")


class AskCustomer(_Msg):
    """Ask the customer for information: pausable clocks stop until the reply."""

    kind: Literal["ask_customer"] = "ask_customer"
    question: str = Field(min_length=1, max_length=4000)


class CustomerReply(_Msg):
    kind: Literal["customer_reply"] = "customer_reply"
    text: str = Field(min_length=1, max_length=4000)


class Assign(_Msg):
    """Assign or reassign the handler; the complaint owner (首诉负责) never changes."""

    kind: Literal["assign"] = "assign"
    owner: str = Field(min_length=1, max_length=64)


class Accept(_Msg):
    """The assignee takes the offered case (接单); stops the assignment clock and the return timer."""

    kind: Literal["accept"] = "accept"
    comment: str = Field(default="", max_length=1000)


class Decline(_Msg):
    """The assignee gives the offered case back at once; it goes to the next candidate."""

    kind: Literal["decline"] = "decline"
    reason: str = Field(min_length=1, max_length=1000)


class Transfer(_Msg):
    """003 §3.3: hand over to another department (or bring it in jointly); the complaint owner stays."""

    kind: Literal["transfer"] = "transfer"
    department: Department
    reason: str = Field(min_length=1, max_length=1000)
    joint: bool = Field(default=False, description="brought in as a participant, not a hand-over (000 §2.2)")
    to_owner: str | None = Field(default=None, min_length=1, max_length=64,
                                 description="the receiving handler; without it the department's team is dispatched")


class Reclassify(_Msg):
    kind: Literal["reclassify"] = "reclassify"
    request_type: RequestType | None = None
    category: str | None = Field(default=None, max_length=64)
    priority: str | None = None
    complaint_grade: Literal["major", "ordinary"] | None = None
    reason: str = Field(min_length=1, max_length=1000)


class Extend(_Msg):
    """Extend the handling deadline; only with a recorded customer notice (000 §2.2)."""

    kind: Literal["extend"] = "extend"
    by: str = Field(description="duration, e.g. '24h'")
    reason: str = Field(min_length=1, max_length=1000)
    customer_notice: str | None = Field(default=None, max_length=1000, description="what the customer was told")


class Acknowledge(_Msg):
    """The escalated owner acknowledges; stops the ladder's ack timer."""

    kind: Literal["acknowledge"] = "acknowledge"
    comment: str = Field(default="", max_length=1000)


class Resolve(_Msg):
    kind: Literal["resolve"] = "resolve"
    summary: str = Field(min_length=1, max_length=4000)
    root_cause: str | None = Field(default=None, max_length=1000, description="required for complaints (002 §4.4)")
    decision: str | None = Field(default=None, max_length=1000, description="management decision on a suggestion")


class Check(_Msg):
    """Checker's quality acceptance 验收 before closure (001 §4.2)."""

    kind: Literal["check"] = "check"
    passed: bool
    remarks: str = Field(default="", max_length=1000)


class Reevaluate(_Msg):
    """Move an open request to the policy's current version (requests otherwise keep the version they were
    accepted under)."""

    kind: Literal["reevaluate"] = "reevaluate"
    reason: str = Field(min_length=1, max_length=1000)


Action = Annotated[
    Respond | Note | AskCustomer | CustomerReply | Assign | Accept | Decline | Transfer | Reclassify | Extend
    | Acknowledge | Resolve | Check | Reevaluate,
    Field(discriminator="kind"),
]
ACTION_KINDS: tuple[str, ...] = (
    "respond", "note", "ask_customer", "customer_reply", "assign", "accept", "decline", "transfer", "reclassify",
    "extend", "acknowledge", "resolve", "check", "reevaluate",
)


class Act(_Msg):
    """Payload of update `act`."""

    actor: Actor
    action: Action


class Confirm(_Msg):
    """Payload of update `confirm`: the customer accepts (or rejects) the reported result (002 §2.2.1)."""

    accepted: bool = True
    comment: str = Field(default="", max_length=1000)


class SurveyAnswer(_Msg):
    """Payload of update `survey` (003 §4.2): 100-point score, optional NPS, resolved yes/no."""

    score: int = Field(ge=0, le=100)
    nps: int | None = Field(default=None, ge=0, le=10)
    resolved: bool = True
    comment: str = Field(default="", max_length=1000)


class EscalateRequest(_Msg):
    """Payload of signal `escalate`: a supervisor raises the request, to a level or one step."""

    actor: Actor
    reason: str = Field(min_length=1, max_length=1000)
    to_level: int | None = Field(default=None, ge=0)
