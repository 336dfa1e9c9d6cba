"""The request's rules, pure: no Temporal, no I/O, no clock of its own (every method takes `now`).

Lives here: the ServiceRequest aggregate (request.py) with its clock set and effects, the business calendar and
SLA ledger, classification, the escalation ladder, permissions (RBAC), assignment ranking, PII masks. May import
models/ only (and the standard library, pydantic); never temporalio, archive/, activities/ or infra/.
"""
