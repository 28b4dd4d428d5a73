# pickpack-ledger: the service image. Multi-stage: the builder installs the project and
# its dependencies into a virtualenv; the runtime stage is python-slim plus that venv,
# running as a non-root user. The entrypoint applies migrations, then serves on :8000.
#   docker build -t pickpack-ledger .
#   docker run -e PICKPACK_DATABASE_URL=postgresql://... -p 8000:8000 pickpack-ledger
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
# Only what the package needs (see .dockerignore): metadata first, then the code.
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY api ./api
COPY cli ./cli
COPY projections ./projections
COPY bootstrap ./bootstrap
COPY devtools ./devtools
COPY migrations ./migrations
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PICKPACK_DATA_DIR=/data
RUN groupadd --system --gid 10001 pickpack \
    && useradd --system --uid 10001 --gid pickpack --home-dir /data --shell /usr/sbin/nologin pickpack \
    && mkdir -p /data \
    && chown pickpack:pickpack /data
COPY --from=builder /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/pickpack-entrypoint
USER pickpack:pickpack
WORKDIR /data
EXPOSE 8000
# Ready = database reachable and migrations applied (GET /ready answers 200). The image
# has no curl: Python's urllib does the request; any error or non-200 exits 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=3).status == 200 else 1)"]
ENTRYPOINT ["pickpack-entrypoint"]
