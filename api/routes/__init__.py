"""The API's routes, one module per resource; app.py includes every ROUTERS entry."""

from __future__ import annotations

from api.routes import agents, customer, health, incidents, reports, requests

ROUTERS = [requests.router, customer.router, incidents.router, agents.router, reports.router, health.router]
