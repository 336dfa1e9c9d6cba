"""What every `kefu` command shares: one-line errors and text-or-JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from models.errors import one_line


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def validation_message(exc: ValidationError) -> str:
    return one_line(exc)


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if as_json or text is None:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(text(data))
