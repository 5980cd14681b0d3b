"""Fixtures of the metrics suite: a real local stack (``starter.stack.LocalStack``, as ``kartu up``
runs it: dev server, sandbox, ``python -m gateway`` and ``python worker.py`` as child processes)
with both metrics endpoints on free ports, and one workload of payments run through it.

The workload runs once per session; the tests read what the endpoints then export.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from ayoconnect.models import CardData
from ayoconnect.security import encrypt_card
from sandbox.control_client import SandboxControl
from starter.client import KartuClient
from starter.codec import CodecSettings, codec_from_env
from starter.codec import data_converter as codec_data_converter
from starter.stack import LocalStack, StackConfig
from tests.stack_support import free_port
from workflows.models import PaymentStatus

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "kartu-metrics-test-key-0123456789"
REDIRECT = "https://merchant.example/pay/done"
FRICTIONLESS_CARD = "4111111111111111"
DECLINED_CARD = "4000000000000002"
# The developer's remote-cluster settings must not reach the local stack or this client.
_SCRUBBED = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE"}
_SCRUBBED |= {"TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA", "KARTU_TASK_QUEUE"}
_SCRUBBED |= {"KARTU_CODEC_KEYS", "KARTU_CODEC_KEYS_FILE", "KARTU_CODEC_DISABLED"}

Sample = tuple[str, dict[str, str], float]


def parse(text: str) -> list[Sample]:
    """Every sample of a Prometheus exposition: (name, labels, value)."""
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for n, have, value in samples
        if n == name and all(have.get(k) == v for k, v in labels.items())
    )


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def new_customer_id() -> str:
    return "C" + uuid.uuid4().hex[:11].upper()


@dataclass
class MetricsStack:
    local: LocalStack
    worker_metrics_url: str
    gateway_metrics_url: str
    kartu: KartuClient
    control: SandboxControl
    http: httpx.AsyncClient

    async def scrape(self, url: str) -> list[Sample]:
        answer = await self.http.get(url)
        answer.raise_for_status()
        return parse(answer.text)

    async def worker_samples(self) -> list[Sample]:
        return await self.scrape(self.worker_metrics_url)

    async def gateway_samples(self) -> list[Sample]:
        return await self.scrape(self.gateway_metrics_url)

    total = staticmethod(total)

    async def encrypted_card(self, number: str) -> str:
        card = CardData(
            pan=number, expiryMonth="12", expiryYear="2039", cvv="123", cardholderName="KARTU T"
        )
        return encrypt_card(card, await self.control.public_key())

    async def create_payment(self, flow: str, amount: str, number: str) -> dict[str, Any]:
        """POST /payments through the gateway (REST, as a backend would)."""
        body = {
            "payment_id": new_id("m"),
            "customer_id": new_customer_id(),
            "amount": amount,
            "encrypted_card": await self.encrypted_card(number),
            "redirect_url": REDIRECT,
            "flow": flow,
        }
        answer = await self.http.post(
            self.local.config.gateway_url + "/payments",
            json=body,
            headers={"X-API-Key": API_KEY},
        )
        assert answer.status_code in (200, 201), answer.text
        return {**answer.json(), "customer_id": body["customer_id"], "amount": amount}

    async def rest(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A gateway request with the API key (and ``headers``)."""
        return await self.http.request(
            method,
            self.local.config.gateway_url + path,
            headers={"X-API-Key": API_KEY, **(headers or {})},
            **kwargs,
        )


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
async def metrics_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MetricsStack]:
    names = ("temporal", "ui", "sandbox", "gateway", "worker_metrics", "gateway_metrics")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {name: free_port() for name in names}
    environ = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ.update(
        KARTU_GATEWAY_API_KEY=API_KEY,
        KARTU_WORKER_METRICS_PORT=str(ports["worker_metrics"]),
        KARTU_GATEWAY_METRICS_PORT=str(ports["gateway_metrics"]),
        # The NEEDS_ATTENTION gauge is counted every half second (30 s by default).
        KARTU_WORKER_METRICS_ATTENTION_SECONDS="0.5",
    )
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("kartu-metrics") / "data",
        temporal_port=ports["temporal"],
        ui_port=ports["ui"],
        sandbox_port=ports["sandbox"],
        gateway_port=ports["gateway"],
        ready_timeout=90,
        # No hourly reconciliation: its run at a full hour would add to the counts compared.
        reconciliation_schedule=False,
    )
    local = LocalStack(config, environ)
    try:
        await local.start()
        codec = codec_from_env(
            allow_dev_key_path=None, settings=CodecSettings(keys_file=local.codec_keys_file)
        )
        client = await Client.connect(
            config.temporal_address, data_converter=codec_data_converter(codec)
        )
        async with (
            httpx.AsyncClient(timeout=60) as http,
            SandboxControl(config.sandbox_url) as control,
        ):
            yield MetricsStack(
                local=local,
                worker_metrics_url=f"http://127.0.0.1:{ports['worker_metrics']}/metrics",
                gateway_metrics_url=f"http://127.0.0.1:{ports['gateway_metrics']}/metrics",
                kartu=KartuClient(client, task_queue=config.task_queue, outcome_timeout=30),
                control=control,
                http=http,
            )
    finally:
        await asyncio.to_thread(local.stop)


@dataclass
class Workload:
    """What the workload did, for the tests to compare the metrics with."""

    paid: list[dict[str, Any]] = field(default_factory=list)
    declined: list[dict[str, Any]] = field(default_factory=list)
    captured: list[dict[str, Any]] = field(default_factory=list)
    refunded: list[dict[str, Any]] = field(default_factory=list)
    compensated: list[dict[str, Any]] = field(default_factory=list)
    # kartu_needs_attention_open{flow="AUTH_CAPTURE"} while the compensation waited for ops.
    attention_seen: float = 0.0
    worker: list[Sample] = field(default_factory=list)
    gateway: list[Sample] = field(default_factory=list)

    def worker_total(self, name: str, **labels: str) -> float:
        return total(self.worker, name, **labels)

    def gateway_total(self, name: str, **labels: str) -> float:
        return total(self.gateway, name, **labels)

    @property
    def ids(self) -> set[str]:
        every = [*self.paid, *self.declined, *self.captured, *self.refunded, *self.compensated]
        return {p["payment_id"] for p in every} | {p["customer_id"] for p in every}


@pytest.fixture(scope="session")
async def workload(metrics_stack: MetricsStack) -> Workload:
    """Direct PAID (twice, one then refunded), DECLINED, authorize + capture, and an
    authorization whose compensating void fails once: NEEDS_ATTENTION, then ops retry, VOIDED."""
    s = metrics_stack
    done = Workload()

    paid, declined, held, to_refund = await asyncio.gather(
        s.create_payment("direct", "150000.00", FRICTIONLESS_CARD),
        s.create_payment("direct", "99000.00", DECLINED_CARD),
        s.create_payment("auth_capture", "75000.50", FRICTIONLESS_CARD),
        s.create_payment("direct", "42000.00", FRICTIONLESS_CARD),
    )
    assert paid["status"] == "PAID", paid
    assert declined["status"] == "DECLINED", declined
    assert held["status"] == "AUTHORIZED", held
    assert to_refund["status"] == "PAID", to_refund
    done.paid += [paid, to_refund]
    done.declined.append(declined)

    captured = await s.rest("POST", f"/payments/{held['payment_id']}/capture", json={})
    assert captured.status_code == 200, captured.text
    assert captured.json()["status"] == "CAPTURED", captured.text
    done.captured.append(held)

    refund = await s.rest("POST", f"/payments/{to_refund['payment_id']}/refund", json={})
    assert refund.status_code in (200, 201), refund.text
    assert refund.json()["status"] == "REFUNDED", refund.text
    done.refunded.append(to_refund)
    # A read, so that a route with a path parameter is counted under its template.
    read = await s.rest("GET", f"/payments/{paid['payment_id']}")
    assert read.status_code == 200, read.text

    await _compensation_needs_attention(s, done)

    # Every callback answered by the gateway (none pending at the sandbox), then both endpoints.
    await s.control.callbacks_settled(timeout=60)
    done.worker = await s.worker_samples()
    done.gateway = await s.gateway_samples()
    return done


async def _compensation_needs_attention(s: MetricsStack, done: Workload) -> None:
    """Cancel an authorization whose void the provider refuses once (final answer): the payment
    waits in NEEDS_ATTENTION (the gauge shows it), ops retry, the void goes through."""
    held = await s.create_payment("auth_capture", "52000.00", FRICTIONLESS_CARD)
    assert held["status"] == "AUTHORIZED", held
    payment_id = held["payment_id"]
    await s.control.set_faults({"void": {"fail_next": 1, "status": 400, "case": "NOT_SUPPORTED"}})
    try:
        handle = s.kartu.temporal.get_workflow_handle(held["workflow_id"])
        await handle.cancel()

        async def needs_attention() -> bool:
            state = await s.kartu.payment_status(payment_id)
            return state.status is PaymentStatus.NEEDS_ATTENTION

        await eventually(needs_attention, what="NEEDS_ATTENTION")

        async def gauge_shows_it() -> bool:
            samples = await s.worker_samples()
            done.attention_seen = total(samples, "kartu_needs_attention_open", flow="AUTH_CAPTURE")
            return done.attention_seen == 1

        await eventually(gauge_shows_it, what="the NEEDS_ATTENTION gauge")
    finally:
        await s.control.clear_faults()
    await s.kartu.resolve(payment_id, "retry", resolved_by="metrics-test")

    async def voided() -> bool:
        return (await s.kartu.payment_status(payment_id)).status is PaymentStatus.VOIDED

    await eventually(voided, what="VOIDED after the retry")

    async def gauge_cleared() -> bool:
        samples = await s.worker_samples()
        return total(samples, "kartu_needs_attention_open", flow="AUTH_CAPTURE") == 0

    await eventually(gauge_cleared, what="the NEEDS_ATTENTION gauge back to 0")
    done.compensated.append(held)
