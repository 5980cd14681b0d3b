"""The stack a benchmark starts for itself: ``LocalStack`` (what ``kartu up`` runs) on free
loopback ports, headless, no reconciliation schedule, its metrics endpoints off (their default
ports are fixed) unless the environment asks, quiet sandbox and gateway logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starter.stack import LocalStack, StackConfig


def bench_environ() -> dict[str, str]:
    return {
        "KARTU_WORKER_METRICS_PORT": "0",
        "KARTU_GATEWAY_METRICS_PORT": "0",
        **os.environ,
        "SANDBOX_LOG_LEVEL": "warning",
        "KARTU_GATEWAY_LOG_LEVEL": "warning",
    }


def bench_stack(data_dir: Path, task_queue: str, **overrides: Any) -> LocalStack:
    config = StackConfig(
        data_dir=data_dir,
        temporal_port=0,
        ui_port=0,
        sandbox_port=0,
        gateway_port=0,
        headless=True,
        task_queue=task_queue,
        reconciliation_schedule=False,
        **overrides,
    )
    return LocalStack(config, bench_environ())
