"""The access log table (000 §6.3 access log; SEEDS §10): one row per read of a request's personal data.

Only archive/reads.py writes it; insert-only, like the operation log (002 §2.4.3). Imports archive/tables.py only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table
from sqlmodel import Field, SQLModel

from archive.tables import at_field


class AccessRow(SQLModel, table=True):
    """Who read which request's personal data, when, and through which path (`GET /requests/{id}`, `link`, …)."""

    __tablename__ = "access_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = at_field(index=True, nullable=False)
    actor_id: str = Field(max_length=64)
    actor_role: str = Field(max_length=32)
    request_id: str = Field(index=True, max_length=64)
    path: str = Field(max_length=128, description="the route or tool the data left through")
    fields: str = Field(max_length=128, description="what was shown: customer, description, audit")


TABLES: list[Table] = [AccessRow.__table__]  # type: ignore[list-item]
