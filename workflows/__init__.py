"""Temporal workflows: orchestration only, deterministic code only.

Lives here: ServiceRequestWorkflow (the lifecycle top to bottom, message handlers that call the domain aggregate,
one timer per clock), its dispatch and incident-link steps as plain objects and functions, IncidentWorkflow, and
common.py (task harness, timer helper, local activities). May import domain/, models/, infra/metrics and the
activity definitions (called by reference, never run here), all through `imports_passed_through`.
"""
