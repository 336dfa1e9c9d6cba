# The kefu project image: worker, codec server, CLI (kefu db upgrade, kefu doctor) and the search-attribute setup.
#   docker build -t kefu:0.1.0 .
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Pinned dependencies first: this layer is rebuilt only when requirements.lock changes.
COPY requirements.lock ./
RUN python -m pip install -r requirements.lock

COPY . .
RUN python -m pip install --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /app kefu \
    && mkdir -p /app/.data && chown kefu /app/.data

USER kefu

# The worker stops gracefully on SIGTERM (docker stop, Kubernetes): it finishes the tasks in hand, then exits.
STOPSIGNAL SIGTERM
EXPOSE 9464 8081
CMD ["python", "worker.py", "--json-logs"]
