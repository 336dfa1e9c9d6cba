"""Incident tables (filled in by the incident work)."""

from __future__ import annotations

from sqlalchemy import Table

TABLES: list[Table] = []
