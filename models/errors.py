"""One-line messages for invalid input: the first problem, the field it is in, and how many more there are."""

from __future__ import annotations

from pydantic import ValidationError


def one_line(exc: ValidationError, where: str = "input", count_more: bool = True) -> str:
    """'customer.phone: String should match pattern … (+1 more)'; `where` names a problem with no field."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or where
    more = f" (+{exc.error_count() - 1} more)" if count_more and exc.error_count() > 1 else ""
    return f"{field}: {first['msg'].removeprefix('Value error, ')}{more}"
