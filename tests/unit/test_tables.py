"""The archive tables hold the payloads written into them: RequestRow every Projection field (persist() writes the
projection's model_dump into it), the log rows every field of their log lines. Their schema is fixed by the
migrations, so the tables are kept by hand; these tests stop them drifting from the payloads."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from sqlmodel import SQLModel

from archive.incident_tables import IncidentEventRow
from archive.tables import AuditRow, RequestRow
from models.incident import IncidentAuditEvent
from models.records import AuditEvent, Projection

PAIRS: list[tuple[type[BaseModel], type[SQLModel]]] = [
    (Projection, RequestRow), (AuditEvent, AuditRow), (IncidentAuditEvent, IncidentEventRow)]
ASSIGNED_LATER = {("ticket", RequestRow)}  # NULL between the INSERT and the ticket that numbers the row


def _types(annotation: Any) -> set[Any]:
    """The members of a union (X | None), else the type itself."""
    return set(get_args(annotation)) if get_origin(annotation) in (Union, types.UnionType) else {annotation}


@pytest.mark.parametrize(("model", "table", "name"),
                         [(model, table, name) for model, table in PAIRS for name in model.model_fields],
                         ids=lambda value: getattr(value, "__name__", value))
def test_table_column_matches_payload_field(model: type[BaseModel], table: type[SQLModel], name: str) -> None:
    field = model.model_fields[name]
    assert name in table.__table__.columns, f"{table.__name__} has no column {name}"  # type: ignore[attr-defined]
    column = table.__table__.columns[name]  # type: ignore[attr-defined]
    payload_types, row_types = _types(field.annotation), _types(table.model_fields[name].annotation)
    if (name, table) in ASSIGNED_LATER:
        assert payload_types | {type(None)} == row_types and column.nullable
        return
    assert payload_types == row_types, f"{table.__name__}.{name}: {row_types} for {model.__name__}'s {payload_types}"
    assert column.nullable == (type(None) in payload_types), f"{table.__name__}.{name} nullability"
