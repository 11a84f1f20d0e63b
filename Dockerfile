# Deployment image, two stages: `build` installs the project and its dependencies into a virtual
# environment (compilers and pip caches stay there); `runtime` is a slim base with only that environment
# and the source, run as a non-root user. docker-compose.yml runs it as the API, a job worker and the
# one-off migration; docs/deploy.md says how to run it in production.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/cme-hub
RUN python -m venv /opt/venv
# Dependencies first, from pyproject.toml alone, so a source change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py && /opt/venv/bin/pip install . && /opt/venv/bin/pip uninstall -y cme-hub
COPY app ./app
COPY alembic.ini ./
COPY migrations ./migrations
# Editable: `cme migrate` finds alembic.ini and migrations/ beside the `app` package.
RUN /opt/venv/bin/pip install --no-deps -e .

FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    CME_DATA_DIR=/srv/cme-hub/var
RUN useradd --system --uid 10001 --home /srv/cme-hub cme
WORKDIR /srv/cme-hub
# The same paths as in `build`: the virtual environment and the editable install point at them.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/cme-hub /srv/cme-hub
# Writable by the service user only: its data directory (service key, embedded database) and the
# audit checkpoints' mount point (named volumes take these owners on first use).
RUN mkdir -p /srv/cme-hub/var /srv/cme-hub/checkpoints && chown cme /srv/cme-hub/var /srv/cme-hub/checkpoints

USER cme
EXPOSE 8000
# Liveness: the process answers. (Readiness, the database reachable, is GET /readyz: point the load
# balancer at that.) The slim image has no curl; the standard library does the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Production supplies CME_DATABASE_URL (PostgreSQL), CME_AUDIENCE and CME_SERVICE_KEY_FILE (a mounted secret),
# runs `cme migrate` as a release step, and scales matching with separate `cme worker` containers.
CMD ["cme", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-migrate", "--no-seed-demo"]
