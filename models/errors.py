"""One-line messages for invalid input, naming the field of each problem and never the value sent."""

from __future__ import annotations

from pydantic import ValidationError


def one_line(exc: ValidationError, where: str = "input", count_more: bool = True) -> str:
    """'customer.phone: String should match pattern … (+1 more)'; `where` names a problem with no field."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or where
    more = f" (+{exc.error_count() - 1} more)" if count_more and exc.error_count() > 1 else ""
    return f"{field}: {first['msg'].removeprefix('Value error, ')}{more}"


def every_problem(exc: ValidationError, where: str = "payload") -> str:
    """Every problem on one line, each naming its field: 'actor.role: Input should be …; action.message: Field
    required'. Never the values sent (pydantic's input_value stays out)."""
    return "; ".join(f"{'.'.join(str(part) for part in error['loc']) or where}: "
                     f"{error['msg'].removeprefix('Value error, ')}" for error in exc.errors())
