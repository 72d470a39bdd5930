# syntax=docker/dockerfile:1.7
# One image, three roles (see scripts/entrypoint.py):
#   docker run IMAGE api | scheduler | migrate
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the locked virtualenv, production dependencies only -------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project

# ---- runtime: the venv and the application code, as an unprivileged user ----------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 aai \
 && useradd --system --uid 10001 --gid aai --home-dir /app --shell /usr/sbin/nologin aai
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY pyproject.toml main.py run_scheduler.py ./
COPY db/ db/
COPY migrations/ migrations/
COPY routers/ routers/
COPY schemas/ schemas/
COPY services/ services/
# The entrypoint, the cut-over's import of the old database (docs/cutover.md), and the
# Auth0 emulator for the compose file's local profile (it serves nothing unless started,
# and production refuses an http:// Auth0 domain).
COPY scripts/__init__.py scripts/entrypoint.py scripts/import_legacy.py scripts/
COPY scripts/legacy_import/ scripts/legacy_import/
COPY scripts/auth0_emulator/ scripts/auth0_emulator/
# The CA bundle RDS certificates chain to, for DB_SSLMODE=verify-full (deploy/stack.py).
ADD --chmod=644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/rds/global-bundle.pem
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    PORT=8000
USER aai:aai
EXPOSE 8000
# For the api role; compose and ECS define their own checks per container.
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/health/live', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
ENTRYPOINT ["python", "-m", "scripts.entrypoint"]
CMD ["api"]
