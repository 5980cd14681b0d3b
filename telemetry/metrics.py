"""The worker's Prometheus metrics: the Temporal SDK's own and Kartu's business metrics, on one
endpoint served by the SDK's Runtime (``http://<KARTU_WORKER_METRICS_HOST>:<PORT>/metrics``).

- The SDK's: task latencies, slots, sticky cache, polls (``temporal_*``, seconds, ``_total``).
- Workflows (``workflows.payment_metrics``, through ``workflow.metric_meter()``, never recorded
  while a workflow replays): payments started / ended / transitions, IDR amounts, compensations.
- Activities (``ayoconnect_call`` below, through ``activity.metric_meter()``): every Ayoconnect
  call by operation and outcome class, with its latency.
- This process (``watch_needs_attention``): the payments open in NEEDS_ATTENTION, counted
  across every workflow by Temporal's visibility, not by this worker's memory.

Labels are low-cardinality by construction: a flow, a status, an operation, an outcome class,
plus the SDK's namespace / task_queue / workflow_type / activity_type. Never a payment id, a
customer id, a token or card data.

One ``Runtime`` per process: ``worker_runtime`` makes it and sets it as the default, so every
client of the process shares it (and its exporter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio import activity
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from ayoconnect.errors import (
    AmbiguousError,
    AuthenticationError,
    ConflictError,
    DeclinedError,
    FinalError,
    InvalidRequestError,
    NotFoundError,
    RuleViolationError,
    TransientError,
)

log = logging.getLogger("kartu.metrics")

DEFAULT_WORKER_METRICS_PORT = 9464

AYOCONNECT_REQUESTS = "kartu_ayoconnect_requests"  # exported with ``_total``
AYOCONNECT_DURATION = "kartu_ayoconnect_request_duration_seconds"
NEEDS_ATTENTION_OPEN = "kartu_needs_attention_open"
NEEDS_ATTENTION_COUNT_ERRORS = "kartu_needs_attention_count_errors"  # exported with ``_total``
# Provider calls take from tens of milliseconds to a 30 s timeout; the SDK's defaults stop at 10.
_CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Flows whose workflows carry ``KartuPaymentStatus`` (and so may sit in NEEDS_ATTENTION): the
# payments, their refunds, reconciliation's reviews. Any other flow is counted as OTHER, so the
# sum over ``flow`` is the whole count.
ATTENTION_FLOWS = ("DIRECT", "AUTH_CAPTURE", "REFUND", "REVIEW")
_ATTENTION_QUERY = "KartuPaymentStatus = 'NEEDS_ATTENTION' AND ExecutionStatus = 'Running'"


class WorkerMetricsSettings(BaseSettings):
    """``KARTU_WORKER_METRICS_HOST`` / ``_PORT`` (0 or empty: no endpoint) /
    ``_ATTENTION_SECONDS`` (how often the NEEDS_ATTENTION gauge is counted)."""

    model_config = SettingsConfigDict(
        env_prefix="KARTU_WORKER_METRICS_", extra="ignore", frozen=True
    )

    # Loopback by default, like the gateway; a container sets 0.0.0.0 for Prometheus.
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_WORKER_METRICS_PORT, ge=0, le=65535)
    attention_seconds: float = Field(default=30.0, gt=0)

    @field_validator("port", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return 0 if isinstance(value, str) and not value.strip() else value

    @property
    def bind_address(self) -> str | None:
        if not self.port:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def worker_runtime(settings: WorkerMetricsSettings | None = None) -> Runtime | None:
    """The process's Runtime exporting Prometheus metrics, set as the default Runtime; None
    when metrics are off or the port cannot be bound (logged as an error: the worker still
    runs, a busy metrics port must not stop payments)."""
    settings = settings or WorkerMetricsSettings()
    address = settings.bind_address
    if address is None:
        log.info("worker metrics off (KARTU_WORKER_METRICS_PORT=0)")
        return None
    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    # Prometheus conventions: counters end in _total, durations in seconds.
                    counters_total_suffix=True,
                    durations_as_seconds=True,
                    histogram_bucket_overrides={AYOCONNECT_DURATION: _CALL_BUCKETS},
                )
            )
        )
    except ValueError as exc:  # the exporter could not bind
        log.error("worker metrics NOT exported on %s: %s", address, exc)
        return None
    Runtime.set_default(runtime, error_if_already_set=False)
    log.info("worker metrics on http://%s/metrics", address)
    return runtime


# --- Ayoconnect calls (activities) ---------------------------------------------------------

# Most specific first: the label is the first class the error is an instance of.
_OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (DeclinedError, "declined"),
    (RuleViolationError, "rule_violation"),
    (NotFoundError, "not_found"),
    (ConflictError, "conflict"),
    (InvalidRequestError, "invalid_request"),
    (FinalError, "final"),
    (AmbiguousError, "ambiguous"),
    (AuthenticationError, "authentication"),
    (TransientError, "transient"),
    (ValueError, "invalid_request"),  # refused by the client before it was sent
    (asyncio.CancelledError, "cancelled"),
)


def outcome_class(error: BaseException | None) -> str:
    """The outcome label of a call: ``ok``, the Ayoconnect error class, or ``error``."""
    if error is None:
        return "ok"
    for kind, label in _OUTCOMES:
        if isinstance(error, kind):
            return label
    return "error"


@contextlib.contextmanager
def ayoconnect_call(operation: str | None = None) -> Iterator[None]:
    """Count and time the Ayoconnect call(s) of one activity attempt (a retry's look-up and
    resend included) under ``operation`` (default: the activity's type)."""
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        if activity.in_activity():  # unit tests call the methods directly too
            _record_call(operation, error, time.perf_counter() - started)


def _record_call(operation: str | None, error: BaseException | None, seconds: float) -> None:
    meter = activity.metric_meter()
    attributes = {
        "operation": operation or activity.info().activity_type,
        "outcome": outcome_class(error),
    }
    meter.create_counter(
        AYOCONNECT_REQUESTS, "Ayoconnect calls, by operation and outcome class"
    ).add(1, attributes)
    meter.create_histogram_float(
        AYOCONNECT_DURATION, "Ayoconnect call latency (one activity attempt)", "s"
    ).record(seconds, attributes)


# --- NEEDS_ATTENTION, across every workflow ----------------------------------------------------


async def count_needs_attention(client: Client) -> dict[str, int]:
    """Open NEEDS_ATTENTION workflows per flow (visibility: a second or so behind)."""
    total = (await client.count_workflows(_ATTENTION_QUERY)).count
    counts = {}
    for flow in ATTENTION_FLOWS:
        query = f"{_ATTENTION_QUERY} AND KartuFlow = '{flow}'"
        counts[flow] = (await client.count_workflows(query)).count
    counts["OTHER"] = max(total - sum(counts.values()), 0)
    return counts


async def watch_needs_attention(
    client: Client, meter: MetricMeter, interval: float, stop: asyncio.Event | None = None
) -> None:
    """Set ``kartu_needs_attention_open{flow}`` every ``interval`` seconds until cancelled (or
    ``stop``). A worker exports what Temporal counts, so every worker reports the same value:
    aggregate with ``max``, not ``sum``. A failed count keeps the last value and is counted."""
    gauge = meter.create_gauge(
        NEEDS_ATTENTION_OPEN, "Workflows open in NEEDS_ATTENTION, by flow (visibility count)"
    )
    errors = meter.create_counter(
        NEEDS_ATTENTION_COUNT_ERRORS, "Visibility counts of NEEDS_ATTENTION that failed"
    )
    errors.add(0)  # exported from the start: a panel can tell "no errors" from "no data"
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            for flow, count in (await count_needs_attention(client)).items():
                gauge.set(count, {"flow": flow})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Temporal unreachable: keep the last value, say so
            errors.add(1)
            log.warning("NEEDS_ATTENTION count failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def start_needs_attention_gauge(
    client: Client, runtime: Runtime | None, settings: WorkerMetricsSettings | None = None
) -> asyncio.Task[None] | None:
    """The gauge's loop as a task of this event loop (None when metrics are off)."""
    if runtime is None:
        return None
    interval = (settings or WorkerMetricsSettings()).attention_seconds
    return asyncio.create_task(watch_needs_attention(client, runtime.metric_meter, interval))
