# One image for the Kartu worker, gateway and sandbox; the command picks the role.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ayoconnect ./ayoconnect
COPY sandbox ./sandbox
COPY activities ./activities
COPY workflows ./workflows
COPY starter ./starter
COPY gateway ./gateway
COPY worker.py ./
RUN pip install . && useradd --system --uid 10001 kartu
USER kartu
CMD ["python", "worker.py"]
