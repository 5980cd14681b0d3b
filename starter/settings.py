"""Temporal connection settings shared by every Kartu entry point (worker, starter, gateway).

They are defined once, in ``worker.py`` (``WorkerSettings`` and ``connect``), so the worker, the
Python API and the gateway read the same variables and build the same client: same TLS, same API
key, same data converter (pydantic, and the payload codec once it is added there).

Environment: ``TEMPORAL_ADDRESS`` (default ``localhost:7233``), ``TEMPORAL_NAMESPACE``
(``default``), ``KARTU_TASK_QUEUE`` (``kartu``), ``TEMPORAL_TLS_CERT`` / ``TEMPORAL_TLS_KEY`` /
``TEMPORAL_TLS_CA`` (file paths), ``TEMPORAL_API_KEY``.
"""

from __future__ import annotations

from worker import DEFAULT_TASK_QUEUE
from worker import WorkerSettings as TemporalSettings
from worker import connect as connect_temporal

__all__ = ["DEFAULT_TASK_QUEUE", "TemporalSettings", "connect_temporal"]
