# syntax=docker/dockerfile:1
# One image for Kartu's worker (the default command), gateway, codec server and sandbox; the
# command picks the role. Dependencies come from requirements.lock, hashes checked, so an image
# built next month runs the SDK and libraries the tests ran. Regenerate the lock after changing
# pyproject.toml's dependencies (the command is at the top of requirements.lock).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/kartu
ENV PATH=/opt/kartu/bin:$PATH
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md worker.py ./
COPY ayoconnect ./ayoconnect
COPY sandbox ./sandbox
COPY activities ./activities
COPY workflows ./workflows
COPY starter ./starter
COPY gateway ./gateway
COPY telemetry ./telemetry
COPY codec ./codec
# Kartu itself without dependencies (all are in the lock); pip check fails the build if the
# lock misses one that pyproject.toml asks for.
RUN pip install --no-deps --no-build-isolation . && pip check

FROM ${PYTHON_IMAGE} AS runtime
# HOME is the data dir: the only place the kartu user may write.
ENV PATH=/opt/kartu/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/data \
    KARTU_WORKER_LIVENESS_FILE=/data/worker.alive
RUN groupadd --system --gid 10001 kartu \
    && useradd --system --uid 10001 --gid kartu --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin kartu \
    && install -d -o kartu -g kartu -m 0700 /data
COPY --from=build /opt/kartu /opt/kartu
# Empty and root's: the code is installed in /opt/kartu, nothing here is writable.
WORKDIR /app
USER kartu:kartu
# The worker's liveness (worker.Liveness): its file is touched while the server sees it poll.
# The other roles' checks are in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, time; sys.exit(time.time() - os.stat(os.environ['KARTU_WORKER_LIVENESS_FILE']).st_mtime > 60)"]
CMD ["python", "-m", "worker"]
