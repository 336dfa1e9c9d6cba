"""Messages agents, supervisors and customers send to a running request.

Update `act` carries one agent action; updates `confirm` and `survey` come from the customer side; signal
`escalate` comes from supervisors (it cannot answer, so a refused one is recorded as rejected). Pure pydantic;
imports nothing of ours but other models.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from models.intake import RequestType

Role = Literal["customer", "agent", "team_lead", "supervisor", "manager", "system"]
ROLE_RANK: dict[str, int] = {"customer": 0, "agent": 1, "team_lead": 2, "supervisor": 3, "manager": 4, "system": 5}
# 003 §3.3: departments a case is transferred to; 000 §2.2: the business department for funds at risk.
Department = Literal[
    "customer_service", "technical", "operations", "finance", "marketing", "account_manager", "third_party", "network",
    "business",
]


# Free-text and id limits, one definition each (what the JSON Schema states as minLength / maxLength).
Text = Annotated[str, Field(min_length=1, max_length=4000)]  # what was said or done: a response, a question, a summary
Reason = Annotated[str, Field(min_length=1, max_length=1000)]  # why, wherever an action must say why
Remark = Annotated[str, Field(max_length=1000)]  # a comment, remark, root cause or decision; may be empty
ActorId = Annotated[str, Field(min_length=1, max_length=64)]  # an agent's, a supervisor's or a system's id


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Actor(_Msg):
    id: ActorId
    role: Role


class _Action(_Msg):
    """One agent action; each narrows kind to its own Literal, the discriminator of Action."""

    kind: str


# Actions whose one free-text field is shared: the field stays second, after kind, as each action's schema has it.
class _TextAction(_Action):
    text: Text


class _CommentAction(_Action):
    comment: Remark = ""


class _ReasonAction(_Action):
    reason: Reason


class Respond(_Action):
    """Accept the case and give the first response (stops the first-response clock, 000 §3.1 先受理)."""

    kind: Literal["respond"] = "respond"
    message: Text


class Note(_TextAction):
    """Progress note; customer_visible also sends the customer a progress notice (003 §2.4)."""

    kind: Literal["note"] = "note"
    customer_visible: bool = False
    eta: str | None = Field(default=None, max_length=200, description="estimated resolution time stated (003 §2.3)")


class AskCustomer(_Action):
    """Ask the customer for information: pausable clocks stop until the reply."""

    kind: Literal["ask_customer"] = "ask_customer"
    question: Text


class CustomerReply(_TextAction):
    kind: Literal["customer_reply"] = "customer_reply"


class Assign(_Action):
    """Assign or reassign the handler; the complaint owner (首诉负责) never changes."""

    kind: Literal["assign"] = "assign"
    owner: ActorId


class Accept(_CommentAction):
    """The assignee takes the offered case (接单); stops the assignment clock and the return timer."""

    kind: Literal["accept"] = "accept"


class Decline(_ReasonAction):
    """The assignee gives the offered case back at once; it goes to the next candidate."""

    kind: Literal["decline"] = "decline"


class Transfer(_Action):
    """003 §3.3: hand over to another department (or bring it in jointly); the complaint owner stays."""

    kind: Literal["transfer"] = "transfer"
    department: Department
    reason: Reason
    joint: bool = Field(default=False, description="brought in as a participant, not a hand-over (000 §2.2)")
    to_owner: ActorId | None = Field(
        default=None, description="the receiving handler; without it the department's team is dispatched")


class Reclassify(_Action):
    kind: Literal["reclassify"] = "reclassify"
    request_type: RequestType | None = None
    category: str | None = Field(default=None, max_length=64)
    priority: str | None = None
    complaint_grade: Literal["major", "ordinary"] | None = None
    reason: Reason


class Extend(_Action):
    """Extend the handling deadline; only with a recorded customer notice (000 §2.2)."""

    kind: Literal["extend"] = "extend"
    by: str = Field(description="duration, e.g. '24h'")
    reason: Reason
    customer_notice: Remark | None = Field(default=None, description="what the customer was told")


class Acknowledge(_CommentAction):
    """The escalated owner acknowledges; stops the ladder's ack timer."""

    kind: Literal["acknowledge"] = "acknowledge"


class Resolve(_Action):
    kind: Literal["resolve"] = "resolve"
    summary: Text
    root_cause: Remark | None = Field(default=None, description="required for complaints (002 §4.4)")
    decision: Remark | None = Field(default=None, description="management decision on a suggestion")


class Check(_Action):
    """Checker's quality acceptance 验收 before closure (001 §4.2)."""

    kind: Literal["check"] = "check"
    passed: bool
    remarks: Remark = ""


class Reevaluate(_ReasonAction):
    """Move an open request to the policy's current version (requests otherwise keep the version they were
    accepted under)."""

    kind: Literal["reevaluate"] = "reevaluate"


ActionMessage = (Respond | Note | AskCustomer | CustomerReply | Assign | Accept | Decline | Transfer | Reclassify
                 | Extend | Acknowledge | Resolve | Check | Reevaluate)
Action = Annotated[ActionMessage, Field(discriminator="kind")]
# The discriminator values, in the union's order: each member's kind Literal, defined once on its class.
ACTION_KINDS: tuple[str, ...] = tuple(get_args(member.model_fields["kind"].annotation)[0]
                                      for member in get_args(ActionMessage))


class Act(_Msg):
    """Payload of update `act`."""

    actor: Actor
    action: Action


class Confirm(_Msg):
    """Payload of update `confirm`: the customer accepts (or rejects) the reported result (002 §2.2.1)."""

    accepted: bool = True
    comment: Remark = ""


class SurveyAnswer(_Msg):
    """Payload of update `survey` (003 §4.2): 100-point score, optional NPS, resolved yes/no."""

    score: int = Field(ge=0, le=100)
    nps: int | None = Field(default=None, ge=0, le=10)
    resolved: bool = True
    comment: Remark = ""


class EscalateRequest(_Msg):
    """Payload of signal `escalate`: a supervisor raises the request, to a level or one step."""

    actor: Actor
    reason: Reason
    to_level: int | None = Field(default=None, ge=0)
