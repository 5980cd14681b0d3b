"""Temporal connection settings shared by every Kartu entry point (worker, starter, gateway).

They are defined once, in ``starter.connection`` (``TemporalSettings`` and ``connect``; the
worker's ``WorkerSettings`` extend them), so the worker, the Python API and the gateway read the
same variables and build the same client: same TLS, same API key, same data converter (pydantic,
payloads encrypted by the codec).

Environment: the connection through ``temporalio.envconfig`` (``TEMPORAL_PROFILE`` of the TOML
file ``TEMPORAL_CONFIG_FILE``, then ``TEMPORAL_ADDRESS`` (default ``localhost:7233``),
``TEMPORAL_NAMESPACE`` (``default``), ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``; the old
``TEMPORAL_TLS_CERT`` / ``_KEY`` / ``_CA`` are aliases), and ``KARTU_TASK_QUEUE`` (``kartu``).
"""

from __future__ import annotations

from starter.connection import DEFAULT_TASK_QUEUE, TemporalSettings
from starter.connection import connect as connect_temporal

__all__ = ["DEFAULT_TASK_QUEUE", "TemporalSettings", "connect_temporal"]
