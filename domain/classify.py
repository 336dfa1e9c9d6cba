"""Classification 分类: request type, category, service class and complaint grade from the pack's rules.

002 §2.1.2 classify after the need is confirmed; 003 §1.1 by urgency, impact and complexity; 000 §2.2 分级响应、
分类处理. Pure: no Temporal import, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.intake import Intake
from models.policy import Condition, PolicyPack


@dataclass(frozen=True)
class Classified:
    request_type: str
    category: str | None
    priority: str
    complaint_grade: str | None
    department: str | None = None
    joint_handling: str | None = None
    requires_check: bool = False
    rules: tuple[str, ...] = field(default_factory=tuple)


def _matches(cond: Condition, intake: Intake, request_type: str, category: str | None) -> bool:
    text = intake.description.lower()
    checks = [
        cond.request_type is None or request_type in cond.request_type,
        cond.type_hint is None or intake.type_hint in cond.type_hint,
        cond.category is None or category in cond.category,
        cond.channel is None or intake.channel in cond.channel,
        cond.keywords is None or any(k.lower() in text for k in cond.keywords),
        cond.amount_at_least is None or (intake.amount is not None and float(intake.amount) >= cond.amount_at_least),
        cond.funds_at_risk is None or intake.funds_at_risk == cond.funds_at_risk,
        cond.security is None or intake.security == cond.security,
        cond.urgency is None or intake.urgency in cond.urgency,
    ]
    return all(checks)


def classify(pack: PolicyPack, intake: Intake) -> Classified:
    """Apply every matching rule in order. A backend's type hint is an explicit classification: rules that set
    the type apply only when no hint was given."""
    rules = pack.classification
    request_type: str = intake.type_hint or rules.default_type
    category = intake.category
    priority: str | None = None
    grade: str | None = None
    department = joint = None
    requires_check = False
    fired: list[str] = []
    for rule in rules.rules:
        if not _matches(rule.when, intake, request_type, category):
            continue
        then = rule.then
        if then.request_type and intake.type_hint is None:
            request_type = then.request_type
        category = then.category or category
        priority = then.priority or priority
        grade = then.complaint_grade or grade
        department = then.department or department
        joint = then.joint_handling or joint
        requires_check = requires_check or bool(then.requires_check)
        fired.append(rule.name)
    if priority is None:
        priority = rules.type_priority.get(request_type, rules.default_priority)  # type: ignore[call-overload]
    if request_type != "complaint":
        grade = None
    elif grade is None:
        grade = "ordinary"
    return Classified(request_type, category, priority, grade, department, joint, requires_check, tuple(fired))


def reclassify(pack: PolicyPack, current: Classified, *, request_type: str | None = None, category: str | None = None,
               priority: str | None = None, complaint_grade: str | None = None) -> Classified:
    """An agent's manual reclassification; validated against the pack so a typo never reaches the SLA engine."""
    new_type = request_type or current.request_type
    if new_type not in pack.request_types:
        offered = ", ".join(pack.request_types)
        raise ValueError(f"request_type: {new_type!r} is not offered by policy {pack.id} ({offered})")
    new_priority = priority or current.priority
    if new_priority not in pack.classes:
        raise ValueError(f"priority: {new_priority!r} is not a class of policy {pack.id} ({', '.join(pack.classes)})")
    grade = complaint_grade or current.complaint_grade
    if new_type != "complaint":
        if complaint_grade:
            raise ValueError("complaint_grade: only a complaint has a grade")
        grade = None
    elif grade is None:
        grade = "ordinary"
    return Classified(new_type, category or current.category, new_priority, grade, current.department,
                      current.joint_handling, current.requires_check, (*current.rules, "manual"))
