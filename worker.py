"""Kartu's worker: every workflow and activity on the ``kartu`` task queue.

    python worker.py

Settings come from the environment (``WorkerSettings``: the Temporal connection through
``temporalio.envconfig``, i.e. TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE and the standard TEMPORAL_*
variables; KARTU_TASK_QUEUE; KARTU_WORKER_LIVENESS_FILE) and ``AyoconnectSettings``
(AYOCONNECT_*). The connection itself (``TemporalSettings``, ``connect``, the data converter) is
``starter.connection``'s, shared with every client process; ``kartu up`` and tests import
``WorkerSettings``, ``connect`` and ``build_worker`` from here, so every process builds the same
client and the same worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import Field, field_validator
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import AyoconnectActivities
from activities.reconciliation_activities import ReconciliationActivities
from ayoconnect import AyoconnectClient, AyoconnectSettings
from starter.connection import (
    DEFAULT_TASK_QUEUE,
    TemporalConfigError,
    TemporalSettings,
    connect,
    kartu_data_converter,
)
from telemetry import metrics, tracing
from telemetry.logs import configure_logging
from workflows import ALL_WORKFLOWS
from workflows.search_attributes import ALL_KEYS

# The connection's names are re-exported: defined in starter.connection, so that a client
# connects without importing this module's worker runtime, activities and metrics.
__all__ = [
    "DEFAULT_TASK_QUEUE",
    "PASSTHROUGH_MODULES",
    "Liveness",
    "TemporalConfigError",
    "TemporalSettings",
    "WorkerSettings",
    "build_worker",
    "connect",
    "kartu_data_converter",
    "main",
    "register_search_attributes",
    "workflow_runner",
]

log = logging.getLogger("kartu.worker")

# Imported once outside the sandbox and shared: pure models and their libraries. Re-importing
# them per workflow run would be slow and would make two copies of every pydantic class.
PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "ayoconnect",
    "activities",
    "workflows",
    "httpx",
)


class WorkerSettings(TemporalSettings):
    """The Temporal connection (``TemporalSettings``: TEMPORAL_PROFILE, TEMPORAL_ADDRESS, ...,
    KARTU_TASK_QUEUE) and the worker's own settings."""

    graceful_shutdown_seconds: float = Field(
        default=30.0, gt=0, validation_alias="KARTU_GRACEFUL_SHUTDOWN_SECONDS"
    )
    # Touched while the server sees this worker poll (compose's health check reads its age).
    liveness_file: Path | None = Field(default=None, validation_alias="KARTU_WORKER_LIVENESS_FILE")
    liveness_interval_seconds: float = Field(
        default=10.0, gt=0, validation_alias="KARTU_WORKER_LIVENESS_INTERVAL_SECONDS"
    )
    # A workflow's next task goes first to the worker that ran its last one (its cache); if
    # that worker died, the server hands the task to any worker after this long. The SDK's
    # 10 s would add 10 s to every payment a dead worker held (bench/failover.py measured
    # it); a live worker that is slow to poll costs only a replay elsewhere.
    sticky_schedule_to_start_seconds: float = Field(
        default=2.0, gt=0, validation_alias="KARTU_WORKER_STICKY_TIMEOUT_SECONDS"
    )

    # Workflow task pollers, and the share of them on the task queue's normal (not sticky)
    # queue, where the tasks of workflows no longer in this worker's cache arrive: parked
    # authorizations (held for days, far more than the cache's 1,000) all wake there when
    # their windows end. The SDK's 5 pollers and 0.2 (one poller) left each expiry waiting
    # up to 0.9 s to be taken at 20 expiries/s (bench/parked.py, p99); 20 and 0.5: 0.2 s.
    workflow_task_pollers: int = Field(
        default=20, ge=2, validation_alias="KARTU_WORKER_WORKFLOW_TASK_POLLERS"
    )
    nonsticky_poll_ratio: float = Field(
        default=0.5, gt=0, le=1, validation_alias="KARTU_WORKER_NONSTICKY_POLL_RATIO"
    )

    @field_validator("liveness_file", mode="before")
    @classmethod
    def _empty_file_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


# How often a long-running activity's heartbeats reach the server (see build_worker).
HEARTBEAT_SENT_EVERY = timedelta(seconds=1)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(
    client: Client,
    settings: WorkerSettings,
    ayoconnect_client: AyoconnectClient | None,
    *,
    activities: list | None = None,
    task_queue: str | None = None,
    extra_activities: list | None = None,
) -> Worker:
    """The worker every Kartu process runs: all workflows, all activities, sandbox on.

    ``activities`` replaces the real Ayoconnect ones (tests pass fakes with the same names).
    Reconciliation's activities (they read Temporal and the provider) come with an
    AyoconnectClient; ``extra_activities`` replaces them (tests pass fakes).
    """
    if activities is None:
        if ayoconnect_client is None:
            raise ValueError("give an AyoconnectClient or the activities to register")
        activities = AyoconnectActivities(ayoconnect_client).all()
    if extra_activities is None and ayoconnect_client is not None:
        extra_activities = ReconciliationActivities(client, ayoconnect_client).all()
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=ALL_WORKFLOWS,
        activities=[*activities, *(extra_activities or [])],
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.sticky_schedule_to_start_seconds
        ),
        # The activities heartbeat every second during a long provider call; the SDK would send
        # only every 0.8 x the heartbeat timeout (policies.HEARTBEAT, 3 s: 2.4 s), 0.6 s from the
        # server's deadline. Every second leaves 2 s for a loaded worker.
        max_heartbeat_throttle_interval=HEARTBEAT_SENT_EVERY,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.workflow_task_pollers),
        nonsticky_to_sticky_poll_ratio=settings.nonsticky_poll_ratio,
    )


# The server keeps each poller's last poll time; an idle long poll lasts about a minute, so a
# poller seen within two minutes is polling.
POLLER_FRESHNESS = timedelta(minutes=2)
_POLLED_KINDS = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


class Liveness:
    """``KARTU_WORKER_LIVENESS_FILE``: touched every ``KARTU_WORKER_LIVENESS_INTERVAL_SECONDS``
    while the server lists this worker (the client's identity) among the workflow and activity
    pollers of its task queue. A health check reads the file's age: a worker whose polls stopped,
    or that cannot reach Temporal, stops touching it."""

    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self.interval = interval

    @classmethod
    def prepared(cls, settings: WorkerSettings) -> Liveness | None:
        """The liveness file, created with a time of 0 (not alive yet): an unwritable data
        directory fails here, at start, not as a health check that never passes."""
        if settings.liveness_file is None:
            return None
        path = settings.liveness_file
        try:
            path.write_bytes(b"")
            os.utime(path, (0, 0))
        except OSError as exc:
            raise ValueError(
                f"KARTU_WORKER_LIVENESS_FILE {path}: cannot write it ({exc.strerror}); its "
                f"directory must be writable by this user (uid {os.getuid()})"
            ) from None
        return cls(path, settings.liveness_interval_seconds)

    async def run(self, client: Client, task_queue: str) -> None:
        while True:
            alive = await self._polling(client, task_queue)
            if alive:
                os.utime(self.path)
            # Until the first poll is seen, look again soon: the health check waits on it.
            await asyncio.sleep(self.interval if alive else min(self.interval, 1.0))

    async def _polling(self, client: Client, task_queue: str) -> bool:
        since = datetime.now(UTC) - POLLER_FRESHNESS
        try:
            for kind in _POLLED_KINDS:
                described = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=client.namespace,
                        task_queue=TaskQueue(name=task_queue),
                        task_queue_type=kind,
                    ),
                    timeout=timedelta(seconds=5),
                )
                if not any(
                    poller.identity == client.identity
                    and poller.last_access_time.ToDatetime(tzinfo=UTC) >= since
                    for poller in described.pollers
                ):
                    return False
        except Exception as exc:  # unreachable, refused, timed out: all mean "not alive now"
            log.warning("liveness: cannot see this worker's pollers on %s: %s", task_queue, exc)
            return False
        return True


async def register_search_attributes(client: Client) -> None:
    """Register Kartu's search attributes (dev server, test server). Idempotent."""
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as err:
        # The time-skipping test server cannot list, only add.
        if err.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {
        key.name: int(key.indexed_value_type) for key in ALL_KEYS if key.name not in existing
    }
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    except RPCError as err:
        if err.status is not RPCStatusCode.ALREADY_EXISTS:
            raise


async def main() -> None:
    configure_logging("kartu-worker")
    try:
        settings = WorkerSettings()
        metrics_settings = metrics.WorkerMetricsSettings()
        tracing.configure_tracing("kartu-worker")  # before connect(): it asks for interceptors
        liveness = Liveness.prepared(settings)
        # Codec keys too (CodecConfigError is a ValueError): a worker without them refuses
        # to start rather than write payloads no other process could read.
        converter = kartu_data_converter()
    except ValueError as exc:  # a setting named in the message; no traceback to read through
        raise SystemExit(f"kartu worker: {exc}") from None
    # The process's one Runtime: it exports the SDK's and Kartu's metrics on one endpoint.
    runtime = metrics.worker_runtime(metrics_settings)
    client = await connect(settings, converter, runtime=runtime)
    attention = metrics.start_needs_attention_gauge(client, runtime, metrics_settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AyoconnectClient(AyoconnectSettings()) as ayoconnect_client:
        activities = AyoconnectActivities(ayoconnect_client)
        worker = build_worker(client, settings, ayoconnect_client, activities=activities.all())
        log.info(
            "worker on %s namespace %s task queue %s",
            settings.temporal_address,
            settings.temporal_namespace,
            settings.task_queue,
        )
        run = asyncio.create_task(worker.run())
        if liveness is not None:
            alive = asyncio.create_task(liveness.run(client, settings.task_queue))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            log.info(
                "shutting down (up to %ss for running activities)",
                settings.graceful_shutdown_seconds,
            )
            await worker.shutdown()
        if liveness is not None:
            alive.cancel()
        await run
        await activities.aclose()
        if attention is not None:
            attention.cancel()


if __name__ == "__main__":
    asyncio.run(main())
