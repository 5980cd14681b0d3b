"""Kartu's worker: every workflow and activity on the ``kartu`` task queue.

    python worker.py

Settings come from the environment (``WorkerSettings``: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
KARTU_TASK_QUEUE, TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY / TEMPORAL_TLS_CA, TEMPORAL_API_KEY) and
``AyoconnectSettings`` (AYOCONNECT_*). Other entry points (``kartu up``, gateway, tests) import
``WorkerSettings``, ``connect`` and ``build_worker`` from here, so every process builds the same
client and the same worker.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client, TLSConfig
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import AyoconnectActivities
from activities.reconciliation_activities import ReconciliationActivities
from ayoconnect import AyoconnectClient, AyoconnectSettings
from starter.codec import DEV_KEYS_FILE, codec_from_env
from starter.codec import data_converter as codec_data_converter
from workflows import ALL_WORKFLOWS
from workflows.search_attributes import ALL_KEYS

log = logging.getLogger("kartu.worker")

DEFAULT_TASK_QUEUE = "kartu"
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


class WorkerSettings(BaseSettings):
    """Temporal connection and worker settings."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    temporal_address: str = Field(default="localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, validation_alias="KARTU_TASK_QUEUE")
    tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    tls_ca: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CA")
    api_key: SecretStr | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")
    graceful_shutdown_seconds: float = Field(
        default=30.0, gt=0, validation_alias="KARTU_GRACEFUL_SHUTDOWN_SECONDS"
    )

    def tls_config(self) -> TLSConfig | bool:
        if self.tls_cert is None and self.tls_key is None and self.tls_ca is None:
            # Temporal Cloud with an API key needs TLS even without client certificates.
            return self.api_key is not None
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY, or neither")
        return TLSConfig(
            client_cert=self.tls_cert.read_bytes() if self.tls_cert else None,
            client_private_key=self.tls_key.read_bytes() if self.tls_key else None,
            server_root_ca_cert=self.tls_ca.read_bytes() if self.tls_ca else None,
        )


def kartu_data_converter() -> DataConverter:
    """Pydantic payloads, encrypted by the payload codec that ``KARTU_CODEC_*`` configures.

    With no keys configured, a local development key is created in ``.kartu/codec.keys``, so
    every local process started from the same folder agrees; production sets the keys.
    """
    return codec_data_converter(codec_from_env(allow_dev_key_path=DEV_KEYS_FILE))


async def connect(settings: WorkerSettings, data_converter: DataConverter | None = None) -> Client:
    """A Temporal client with Kartu's data converter: pydantic, payloads encrypted."""
    if data_converter is None:
        data_converter = kartu_data_converter()
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=settings.tls_config(),
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        data_converter=data_converter,
    )


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
    )


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = WorkerSettings()
    client = await connect(settings)
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
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            log.info(
                "shutting down (up to %ss for running activities)",
                settings.graceful_shutdown_seconds,
            )
            await worker.shutdown()
        await run
        await activities.aclose()


if __name__ == "__main__":
    asyncio.run(main())
