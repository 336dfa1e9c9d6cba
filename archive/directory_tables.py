"""Agent directory tables (filled in by the assignment work)."""

from __future__ import annotations

from sqlalchemy import Table

TABLES: list[Table] = []
