"""What a backend system submits: one service request (工单) at acceptance (000 §2.1, 002 §2.1.2, 003 §2.2), and the
workflow id convention derived from its id. Pure pydantic; imports nothing of ours."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

# SEEDS §2: phone, email, online chat, web, app, mini-program, WeChat, SMS, social media, chatbot, kiosk, branch.
Channel = Literal[
    "phone", "email", "chat", "web", "app", "mini_program", "wechat", "sms", "social", "chatbot", "kiosk", "branch"
]
# SEEDS §3: 咨询 inquiry, 投诉 complaint, 建议 suggestion, 报修/故障 repair, 业务办理 transaction.
RequestType = Literal["inquiry", "complaint", "suggestion", "repair", "transaction"]
Language = Literal["zh-CN", "en"]
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class Customer(BaseModel):
    """Customer identity and contact. Personal data: never in search attributes or logs in clear."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, description="customer number in the backend system")
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 -]{4,19}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    language: Language = "zh-CN"

    @model_validator(mode="after")
    def _reachable(self) -> Customer:
        if not self.phone and not self.email:
            raise ValueError("customer needs a phone or an email to be contacted")
        return self


class Intake(BaseModel):
    """A new service request. Rejected before any workflow starts when invalid."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID_PATTERN, description="the backend's id; the workflow id derives from it")
    policy: str = Field(default="service_center", pattern=r"^[a-z][a-z0-9_]*$")
    channel: Channel
    customer: Customer
    description: str = Field(min_length=1, max_length=4000)
    type_hint: RequestType | None = None
    category: str | None = Field(default=None, max_length=64)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=2)
    received_at: AwareDatetime | None = Field(default=None, description="first contact; defaults to acceptance time")
    urgency: Literal["low", "normal", "high"] | None = Field(default=None, description="as stated (003 §2.2)")
    funds_at_risk: bool = False
    security: bool = False
    accepted_by: str | None = Field(default=None, max_length=64, description="agent who took the contact (首问负责)")
    region: str | None = Field(default=None, max_length=64,
                               description="customer's region or branch: nearest-agent dispatch (001 §4.1)")
    incident_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN,
                                    description="incident (突发事件) this request belongs to (SEEDS §11)")
    first_contact_answer: str | None = Field(
        default=None, max_length=4000, description="answered at first contact (counts as first-contact resolution)"
    )

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("description is blank")
        return value.strip()


def workflow_id_for(request_id: str) -> str:
    """Workflow id convention: one workflow per backend request id."""
    return f"kefu-sr-{request_id}"
