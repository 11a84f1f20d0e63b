# Deployment image: slim base, non-root user, uvicorn via `cme serve`.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/cme-hub

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . && useradd --system --uid 10001 --home /srv/cme-hub cme \
    && mkdir -p /srv/cme-hub/var && chown cme /srv/cme-hub/var

USER cme
EXPOSE 8000
# Production supplies CME_DATABASE_URL (PostgreSQL), CME_AUDIENCE and CME_SERVICE_KEY_FILE (a mounted secret),
# runs `cme migrate` as a release step, and scales matching with separate `cme worker` containers.
CMD ["cme", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-migrate", "--no-seed-demo"]
