# The kefu project image: worker, HTTP API (kefu serve), codec server, CLI (kefu db upgrade, kefu doctor) and the
# Temporal setup one-shot. Runtime dependencies only: no pytest, hypothesis, ruff or test server.
#   docker build -t kefu:0.1.0 .

# --- build: a virtualenv with the locked runtime dependencies and the project ------------------------------------
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# pyproject's dependencies minus the test tools, at the versions requirements.lock pins (constraints install nothing
# by themselves, so the lock's dev packages stay out). This layer is rebuilt only when these files change.
COPY pyproject.toml requirements.lock deploy/runtime_requirements.py /tmp/deps/
RUN python /tmp/deps/runtime_requirements.py /tmp/deps/pyproject.toml > /tmp/deps/runtime.txt \
    && python -m venv /opt/kefu \
    && /opt/kefu/bin/pip install --constraint /tmp/deps/requirements.lock --requirement /tmp/deps/runtime.txt

# The project itself, editable so alembic.ini, migrations and deploy/ stay where the code expects them.
COPY . .
RUN /opt/kefu/bin/pip install --no-deps --editable . \
    && rm -rf /tmp/deps

# --- runtime ----------------------------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/kefu/bin:$PATH

WORKDIR /app
COPY --from=build /opt/kefu /opt/kefu
COPY --from=build /app /app
RUN useradd --system --uid 10001 --home-dir /app kefu \
    && mkdir -p /app/.data && chown kefu /app/.data && chmod 700 /app/.data

USER kefu

# The worker stops gracefully on SIGTERM (docker stop, Kubernetes): it finishes the tasks in hand, then exits.
STOPSIGNAL SIGTERM
EXPOSE 8000 8081 9464
CMD ["python", "worker.py", "--json-logs"]
