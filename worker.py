"""Kartu's worker: every workflow and activity on the ``kartu`` task queue.

    python worker.py

Settings come from the environment (``WorkerSettings``: the Temporal connection through
``temporalio.envconfig``, i.e. TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE and the standard TEMPORAL_*
variables; KARTU_TASK_QUEUE; KARTU_WORKER_LIVENESS_FILE) and ``AyoconnectSettings``
(AYOCONNECT_*). Other entry points (``kartu up``, gateway, tests) import
``WorkerSettings``, ``connect`` and ``build_worker`` from here, so every process builds the same
client and the same worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, TLSConfig
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, DataSource
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import AyoconnectActivities
from activities.reconciliation_activities import ReconciliationActivities
from ayoconnect import AyoconnectClient, AyoconnectSettings
from codec import DEV_KEYS_FILE, codec_from_env
from codec import data_converter as codec_data_converter
from telemetry import metrics, tracing
from telemetry.logs import configure_logging
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


class TemporalConfigError(ValueError):
    """The Temporal connection settings cannot work; the message names the setting."""


# Kartu's TLS variables from before envconfig, kept as aliases of the standard ones:
# (alias, its WorkerSettings field, standard variable less _PATH/_DATA, ClientConfigTLS field).
TLS_ALIASES = (
    ("TEMPORAL_TLS_CERT", "tls_cert", "TEMPORAL_TLS_CLIENT_CERT", "client_cert"),
    ("TEMPORAL_TLS_KEY", "tls_key", "TEMPORAL_TLS_CLIENT_KEY", "client_private_key"),
    ("TEMPORAL_TLS_CA", "tls_ca", "TEMPORAL_TLS_SERVER_CA_CERT", "server_root_ca_cert"),
)


class WorkerSettings(BaseSettings):
    """Temporal connection and worker settings.

    The connection is loaded as the ``temporal`` CLI and every SDK load it
    (``temporalio.envconfig``): the profile ``TEMPORAL_PROFILE`` (default ``default``) of the TOML
    file ``TEMPORAL_CONFIG_FILE`` (default ``~/.config/temporalio/temporal.toml``), then the
    standard variables over it (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
    ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS``, ``TEMPORAL_TLS_CLIENT_CERT_PATH``, ...), then values
    given to the constructor over both. ``TEMPORAL_TLS_CERT`` / ``_KEY`` / ``_CA`` are aliases of
    ``TEMPORAL_TLS_CLIENT_CERT_PATH`` / ``TEMPORAL_TLS_CLIENT_KEY_PATH`` /
    ``TEMPORAL_TLS_SERVER_CA_CERT_PATH``. An empty variable counts as unset (compose's
    ``${VAR:-}``). Bad settings fail here, at construction, with the setting named.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    address: str | None = Field(default=None, validation_alias="TEMPORAL_ADDRESS")
    namespace: str | None = Field(default=None, validation_alias="TEMPORAL_NAMESPACE")
    api_key: SecretStr | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")
    profile: str | None = Field(default=None, validation_alias="TEMPORAL_PROFILE")
    config_file: Path | None = Field(default=None, validation_alias="TEMPORAL_CONFIG_FILE")
    tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    tls_ca: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CA")
    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, validation_alias="KARTU_TASK_QUEUE")
    graceful_shutdown_seconds: float = Field(
        default=30.0, gt=0, validation_alias="KARTU_GRACEFUL_SHUTDOWN_SECONDS"
    )
    # Touched while the server sees this worker poll (compose's health check reads its age).
    liveness_file: Path | None = Field(default=None, validation_alias="KARTU_WORKER_LIVENESS_FILE")
    liveness_interval_seconds: float = Field(
        default=10.0, gt=0, validation_alias="KARTU_WORKER_LIVENESS_INTERVAL_SECONDS"
    )

    _connection: dict[str, Any] = PrivateAttr()

    @field_validator(
        "address", "namespace", "api_key", "profile", "config_file", "tls_cert", "tls_key",
        "tls_ca", "liveness_file", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _load_connection(self) -> WorkerSettings:
        try:
            self._connection = _temporal_connection(self, os.environ)
        except TemporalConfigError as exc:
            raise PydanticCustomError("temporal_config", "{reason}", {"reason": str(exc)}) from None
        return self

    @property
    def temporal_address(self) -> str:
        return str(self._connection["target_host"])

    @property
    def temporal_namespace(self) -> str:
        return str(self._connection["namespace"])

    def tls_config(self) -> TLSConfig | bool:
        tls: TLSConfig | bool = self._connection["tls"]
        return tls

    def connect_options(self) -> dict[str, Any]:
        """``Client.connect`` keyword arguments: target_host, namespace, api_key, tls,
        rpc_metadata (the profile's ``grpc_meta`` and ``TEMPORAL_GRPC_META_*``)."""
        return dict(self._connection)


def _temporal_connection(settings: WorkerSettings, environ: Mapping[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in environ.items() if v.strip() or not k.startswith("TEMPORAL_")}
    flag = env.get("TEMPORAL_TLS")
    if flag is not None and flag.strip().lower() not in {"true", "false", "1", "0"}:
        raise TemporalConfigError(f"TEMPORAL_TLS must be true or false, not {flag!r}")
    source = settings.config_file
    if source is not None and not source.exists():
        raise TemporalConfigError(f"TEMPORAL_CONFIG_FILE: no file at {source}")
    try:
        profile = ClientConfigProfile.load(
            profile=settings.profile, config_source=source, override_env_vars=env
        )
    except RuntimeError as exc:  # envconfig's ConfigError: bad TOML, unknown profile, ...
        where = f"config file {source}" if source else "default config file"
        name = settings.profile or env.get("TEMPORAL_PROFILE") or "default"
        # A TOML error quotes the line it is on: it may hold the api_key, so only the
        # position and the reason are kept.
        reason = "; ".join(
            line.strip() for line in str(exc).splitlines() if line.strip() and "|" not in line
        )
        raise TemporalConfigError(f"Temporal profile {name!r} ({where}): {reason}") from None
    api_key = settings.api_key.get_secret_value() if settings.api_key else profile.api_key
    return {
        "target_host": settings.address or profile.address or "localhost:7233",
        "namespace": settings.namespace or profile.namespace or "default",
        "api_key": api_key or None,
        "tls": _tls(_with_aliases(profile.tls, settings, env), bool(api_key)),
        "rpc_metadata": dict(profile.grpc_meta),
    }


def _with_aliases(
    tls: ClientConfigTLS | None, settings: WorkerSettings, env: Mapping[str, str]
) -> ClientConfigTLS | None:
    """Kartu's old TLS variables, as environment variables: over the profile file, and an error
    beside their standard name (which one would win is not obvious to whoever set both)."""
    updates: dict[str, Path] = {}
    for alias, setting, standard, field in TLS_ALIASES:
        value = getattr(settings, setting)
        if value is None:
            continue
        for clash in (f"{standard}_PATH", f"{standard}_DATA"):
            if clash in env:
                raise TemporalConfigError(
                    f"{alias} is an alias of {standard}_PATH: set {alias} or {clash}, not both"
                )
        updates[field] = value
    if not updates:
        return tls
    return dataclasses.replace(tls or ClientConfigTLS(), **updates)


def _tls(tls: ClientConfigTLS | None, has_api_key: bool) -> TLSConfig | bool:
    if tls is None:
        return has_api_key  # Temporal Cloud with an API key needs TLS, certificates or not
    if tls.disabled:
        return False
    if (tls.client_cert is None) != (tls.client_private_key is None):
        raise TemporalConfigError(
            "a TLS client certificate needs its key: set both TEMPORAL_TLS_CLIENT_CERT_PATH and "
            "TEMPORAL_TLS_CLIENT_KEY_PATH (aliases TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY), or both "
            "tls.client_cert_path and tls.client_key_path in the profile, or neither"
        )
    config = TLSConfig(
        client_cert=_read(tls.client_cert, "client certificate"),
        client_private_key=_read(tls.client_private_key, "client key"),
        server_root_ca_cert=_read(tls.server_root_ca_cert, "server CA certificate"),
        domain=tls.server_name,
    )
    return config if config != TLSConfig() else True


def _read(source: DataSource | None, what: str) -> bytes | None:
    if isinstance(source, Path):
        try:
            return source.read_bytes()
        except OSError as exc:
            raise TemporalConfigError(f"TLS {what}: cannot read {source}: {exc.strerror}") from None
    return source.encode() if isinstance(source, str) else source


def kartu_data_converter() -> DataConverter:
    """Pydantic payloads, encrypted by the payload codec that ``KARTU_CODEC_*`` configures.

    With no keys configured, a local development key is created in ``.kartu/codec.keys``, so
    every local process started from the same folder agrees; production sets the keys.
    """
    return codec_data_converter(codec_from_env(allow_dev_key_path=DEV_KEYS_FILE))


async def connect(
    settings: WorkerSettings,
    data_converter: DataConverter | None = None,
    *,
    runtime: Runtime | None = None,
) -> Client:
    """A Temporal client with Kartu's data converter (pydantic, payloads encrypted) and its
    tracing interceptors. ``runtime``: the worker passes the one exporting its metrics."""
    if data_converter is None:
        data_converter = kartu_data_converter()
    return await Client.connect(
        **settings.connect_options(),
        data_converter=data_converter,
        interceptors=tracing.temporal_interceptors(),
        runtime=runtime,
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
    except ValueError as exc:  # a setting named in the message; no traceback to read through
        raise SystemExit(f"kartu worker: {exc}") from None
    # The process's one Runtime: it exports the SDK's and Kartu's metrics on one endpoint.
    runtime = metrics.worker_runtime(metrics_settings)
    client = await connect(settings, runtime=runtime)
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
