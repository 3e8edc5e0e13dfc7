# syntax=docker/dockerfile:1
# MIRIX server image: PostgreSQL, Redis and Kafka clients included; SQLite works too (data in /data).
#   docker build -t mirix-server .
#   docker run -p 8531:8531 -v mirix-data:/data mirix-server
# See docs/deployment.md and docker-compose.yml.

# --- build: the package and its extras in a virtualenv ---------------------------------------------
FROM python:3.11-slim AS build
# Tracing too: --build-arg EXTRAS=postgres,redis,kafka,otel
ARG EXTRAS=postgres,redis,kafka
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (their layer is reused while only the code changes) ...
COPY pyproject.toml README.md ./
RUN mkdir mirix && touch mirix/__init__.py \
    && pip install ".[${EXTRAS}]" \
    && pip uninstall -y mirix-server
# ... then the code itself.
COPY mirix ./mirix
RUN pip install --no-deps .

# --- runtime: the virtualenv only, run by an unprivileged user ----------------------------------------
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MIRIX_DATA_DIR=/data \
    MIRIX_HOST=0.0.0.0 \
    MIRIX_PORT=8531
RUN groupadd --system --gid 10001 mirix \
    && useradd --system --uid 10001 --gid mirix --home-dir /data --no-create-home --shell /usr/sbin/nologin mirix \
    && mkdir -p /data && chown mirix:mirix /data
COPY --from=build /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/mirix-entrypoint
RUN chmod 0755 /usr/local/bin/mirix-entrypoint
USER mirix
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8531
# Plain Python, so the image needs no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/health' % os.environ.get('MIRIX_PORT', '8531'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
ENTRYPOINT ["mirix-entrypoint"]
