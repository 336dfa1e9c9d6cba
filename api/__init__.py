"""The HTTP front door (`kefu serve`, issue 14): one API for people and for systems in other languages.

What lives here:
- app.py (the FastAPI factory), server.py (uvicorn), settings.py (environment), handlers.py (errors as JSON);
- auth.py (bearer JWTs: kefu's own issuer, a JWKS file or an OIDC provider), deps.py (the routes' dependencies),
  scope.py (who may read which request, masking);
- routes/: one module per resource (requests, customer links, incidents, agents, reports, health);
- the operations the CLI shares, with no HTTP in them: submit.py (idempotent start of a request), declare.py
  (an incident), kpi.py (the KPI report of a period), temporal.py (updates as the verified principal), errors.py.

Imports: infra, archive, models, domain, reports, policies and workflows (their message types and workflow
classes); never cli/ (the CLI imports the shared operations from here).
"""
