"""Acceptance scenarios of SCENARIOS.md, one test each, on the time-skipping server."""
