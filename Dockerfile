# Rally Bridge in a container: the wheel built from this checkout, installed into a fresh virtualenv, run as a
# non-root user. `docker compose up` (compose.yaml) adds PostgreSQL and runs `rallybridge db upgrade` first.
#
# tests/integration/test_wheel_install.py does the same outside Docker: it builds the wheel from the context this
# file sees (.dockerignore), installs it into a fresh virtualenv, and runs ENTRYPOINT + CMD, the HEALTHCHECK
# command below and compose.yaml's migrate command. Change them here and that test runs the new ones.

FROM python:3.11-slim AS builder
WORKDIR /src
COPY . .
RUN python -m pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=builder /dist/ /tmp/dist/
RUN python -m venv /opt/rallybridge \
    && /opt/rallybridge/bin/pip install /tmp/dist/*.whl \
    && rm -rf /tmp/dist \
    && groupadd --system --gid 10001 rallybridge \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/rallybridge rallybridge \
    && mkdir /data \
    && chown rallybridge:rallybridge /data
# /data is the working directory: the default SQLite database (./rallybridge.sqlite3) and an optional .env live there.
ENV PATH=/opt/rallybridge/bin:$PATH \
    RALLYBRIDGE_HOST=0.0.0.0 \
    RALLYBRIDGE_PORT=3000
WORKDIR /data
USER 10001:10001
EXPOSE 3000
# Healthy while the bridge answers /healthz (its database reachable). python: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('RALLYBRIDGE_PORT') or '3000'), timeout=4)"]
ENTRYPOINT ["rallybridge"]
CMD ["serve"]
