"""Masking of customer personal data for logs and agent-facing text (002 §6.3 masking/anonymisation, SEEDS §10).

Pure functions, no I/O. Masked forms keep just enough to recognise a contact on a call ("138****5678").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

MASK = "*"

# A Chinese mobile (optionally +86), a landline with area code, or any +country number; word-bounded by digits.
PHONE_RE = re.compile(
    r"(?<![\d+])(?:(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}-\d{7,8}|\+\d[\d -]{7,16}\d)(?!\d)"
)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _is_cjk(char: str) -> bool:
    return "\u2e80" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\u3400" <= char <= "\u4dbf"


def mask_name(name: str) -> str:
    """张三丰 -> 张**; Alice Smith -> A**** S****: the first character of each word survives."""
    name = name.strip()
    if not name:
        return name
    if any(_is_cjk(ch) for ch in name):
        # Chinese names have no spaces: keep the surname character only.
        return name[0] + MASK * (len(name) - 1) if len(name) > 1 else MASK
    return " ".join(word[0] + MASK * (len(word) - 1) for word in name.split())


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678: the first three and last four digits survive, separators are dropped."""
    prefix = "+" if phone.strip().startswith("+") else ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 8:
        return prefix + digits[:3] + MASK * (len(digits) - 7) + digits[-4:]
    if len(digits) > 2:
        return prefix + MASK * (len(digits) - 2) + digits[-2:]
    return MASK * len(digits)


def mask_email(email: str) -> str:
    """alice@example.com -> a***@example.com: the domain survives (it tells the provider, not the person)."""
    local, at, domain = email.strip().partition("@")
    if not at:
        return mask_name(email)
    return (local[:1] or MASK) + MASK * 3 + "@" + domain


def mask_contact(value: str) -> str:
    """A recipient of either kind: an email or a phone number; anything else (an agent id) is not personal data."""
    if EMAIL_RE.fullmatch(value.strip()):
        return mask_email(value)
    if PHONE_RE.fullmatch(value.strip()):
        return mask_phone(value)
    return value


def scrub(text: str) -> str:
    """Mask anything in free text that looks like a phone number or an email address."""
    text = EMAIL_RE.sub(lambda m: mask_email(m.group()), text)
    return PHONE_RE.sub(lambda m: mask_phone(m.group()), text)


# Field names whose values are personal data, whatever the record (log event, archive row, Customer dump).
PII_FIELDS: dict[str, Callable[[str], str]] = {
    "name": mask_name,
    "customer_name": mask_name,
    "phone": mask_phone,
    "customer_phone": mask_phone,
    "email": mask_email,
    "customer_email": mask_email,
}


def mask_fields(value: Any) -> Any:
    """Recursively mask PII_FIELDS values in mappings and lists; other strings are scrubbed for phones/emails."""
    if isinstance(value, Mapping):
        return {
            key: PII_FIELDS[key](item) if key in PII_FIELDS and isinstance(item, str) else mask_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list) or type(value) is tuple:
        return type(value)(mask_fields(item) for item in value)
    if isinstance(value, str):
        return scrub(value)
    return value


def _phone_pattern(phone: str) -> re.Pattern[str] | None:
    """The phone's digits with any separators between them, so '138 1234 5678' matches 13812345678."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 5:
        return None
    return re.compile(r"(?<!\d)" + r"[\s-]?".join(digits) + r"(?!\d)")


def mask_text(text: str, customer: Mapping[str, Any]) -> str:
    """Replace the customer's own name, phone and email in free text with their masked forms.

    `customer` is a Customer dump (name/phone/email) or an archive row (customer_name/customer_phone/...).
    """
    name = customer.get("name") or customer.get("customer_name")
    phone = customer.get("phone") or customer.get("customer_phone")
    email = customer.get("email") or customer.get("customer_email")
    if email:
        text = re.sub(re.escape(email), mask_email(email), text, flags=re.IGNORECASE)
    if phone and (pattern := _phone_pattern(phone)):
        text = pattern.sub(mask_phone(phone), text)
    if name and name.strip():
        text = re.sub(re.escape(name.strip()), mask_name(name), text, flags=re.IGNORECASE)
    return text
