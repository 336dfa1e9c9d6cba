"""What every `kefu` command shares: one-line errors and text-or-JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from models.errors import one_line


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def validation_message(exc: ValidationError) -> str:
    return one_line(exc)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], raw: Any) -> M:
    """Validate user input into `model`; a problem becomes a one-line CliError naming the field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CliError(validation_message(exc)) from exc


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if as_json or text is None:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(text(data))


R = TypeVar("R", bound=BaseModel)


async def run_update(handle: WorkflowHandle, name: str, payload: BaseModel, result_type: type[R]) -> R:
    """Execute an update; a validator's refusal becomes a one-line CliError."""
    try:
        return await handle.execute_update(name, payload, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        raise CliError(f"refused: {getattr(cause, 'message', None) or cause}") from exc
