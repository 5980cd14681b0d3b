"""The metrics pieces without a stack: settings, outcome classes, the gateway's route templates,
its listener, and what an activity records."""

from __future__ import annotations

import asyncio
import re
import socket

import httpx
import pytest
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

from ayoconnect.errors import (
    AmbiguousError,
    AuthenticationError,
    DeclinedError,
    FinalError,
    NotFoundError,
    RuleViolationError,
    TransientError,
)
from gateway import GatewaySettings, create_app
from telemetry.gateway_metrics import GatewayMetrics
from telemetry.metrics import (
    AYOCONNECT_DURATION,
    AYOCONNECT_REQUESTS,
    WorkerMetricsSettings,
    ayoconnect_call,
    outcome_class,
    watch_needs_attention,
    worker_runtime,
)
from tests.stack_support import free_port

API_KEY = "metrics-unit-test-key-0123456789"


@pytest.mark.parametrize(
    ("error", "label"),
    [
        (None, "ok"),
        (DeclinedError("no"), "declined"),
        (RuleViolationError("no"), "rule_violation"),
        (NotFoundError("no"), "not_found"),
        (FinalError("no"), "final"),
        (AmbiguousError("?"), "ambiguous"),
        (AuthenticationError("401"), "authentication"),
        (TransientError("503"), "transient"),
        (ValueError("bad request"), "invalid_request"),
        (RuntimeError("bug"), "error"),
    ],
)
def test_outcome_class(error: BaseException | None, label: str):
    assert outcome_class(error) == label


def test_worker_metrics_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KARTU_WORKER_METRICS_HOST", raising=False)
    monkeypatch.delenv("KARTU_WORKER_METRICS_PORT", raising=False)
    assert WorkerMetricsSettings().bind_address == "127.0.0.1:9464"
    monkeypatch.setenv("KARTU_WORKER_METRICS_PORT", "")
    assert WorkerMetricsSettings().bind_address is None
    monkeypatch.setenv("KARTU_WORKER_METRICS_PORT", "0")
    assert WorkerMetricsSettings().bind_address is None
    monkeypatch.setenv("KARTU_WORKER_METRICS_PORT", "9100")
    monkeypatch.setenv("KARTU_WORKER_METRICS_HOST", "::")
    assert WorkerMetricsSettings().bind_address == "[::]:9100"
    assert worker_runtime(WorkerMetricsSettings(port=0)) is None


def test_a_busy_worker_metrics_port_does_not_stop_the_worker(caplog: pytest.LogCaptureFixture):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert worker_runtime(WorkerMetricsSettings(port=port)) is None
    assert "NOT exported" in caplog.text


def test_gateway_metrics_address():
    assert GatewaySettings(api_key=API_KEY).metrics_address == ("127.0.0.1", 9465)
    # Embedded on an ephemeral port (tests): no listener unless one is asked for.
    assert GatewaySettings(api_key=API_KEY, port=0).metrics_address is None
    asked = GatewaySettings(api_key=API_KEY, port=0, metrics_port=9999)
    assert asked.metrics_address == ("127.0.0.1", 9999)
    elsewhere = GatewaySettings(api_key=API_KEY, metrics_port=9999, metrics_host="10.0.0.5")
    assert elsewhere.metrics_address == ("10.0.0.5", 9999)
    assert GatewaySettings(api_key=API_KEY, metrics_port=0).metrics_address is None


class _FakeKartu:
    """Enough of a KartuClient for the gateway's health check."""

    async def check_health(self) -> bool:
        return True


def gateway_app(**settings: object):
    app = create_app(lambda: _FakeKartu(), GatewaySettings(api_key=API_KEY, **settings))  # type: ignore[arg-type, return-value]
    app.state.kartu = _FakeKartu()  # the lifespan sets it; ASGITransport does not run it
    return app


def exported(metrics: GatewayMetrics, name: str) -> dict[tuple[str, ...], float]:
    text = metrics.exposition().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            out[tuple(sorted(labels.split(",")))] = float(value)
    return out


async def test_requests_are_counted_under_their_route_template():
    app = gateway_app(port=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        assert (await http.get("/payments/order_secret_12345")).status_code == 401
        assert (await http.get("/no/such/path/4111111111111111")).status_code == 404
        refused = await http.post("/callbacks/ayoconnect", json={"type": "PAYMENT"})
        assert refused.status_code == 401
    metrics: GatewayMetrics = app.state.metrics
    requests = exported(metrics, "kartu_gateway_requests_total")
    assert requests == {
        ('method="GET"', 'route="/payments/{payment_id}"', 'status="401"'): 1,
        ('method="GET"', 'route="unmatched"', 'status="404"'): 1,
        ('method="POST"', 'route="/callbacks/ayoconnect"', 'status="401"'): 1,
    }
    callbacks = exported(metrics, "kartu_gateway_callbacks_total")
    assert callbacks == {('result="rejected_signature"', 'type="unknown"'): 1}
    text = metrics.exposition().decode()
    assert "order_secret_12345" not in text and "4111111111111111" not in text


async def test_the_gateway_serves_its_metrics_on_their_own_port_while_it_runs():
    port = free_port()
    app = gateway_app(port=0, metrics_port=port)
    url = f"http://127.0.0.1:{port}/metrics"
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gw") as gateway,
        httpx.AsyncClient() as scraper,
    ):
        assert (await gateway.get("/healthz")).status_code == 200
        answer = await scraper.get(url)
        assert answer.status_code == 200
        assert 'kartu_gateway_requests_total{method="GET",route="/healthz"' in answer.text
        assert "process_resident_memory_bytes" in answer.text
        # Never on the public port.
        assert (await gateway.get("/metrics")).status_code == 404
    async with httpx.AsyncClient() as scraper:
        with pytest.raises(httpx.ConnectError):
            await scraper.get(url)


def test_a_busy_gateway_metrics_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert GatewayMetrics().serve("127.0.0.1", busy.getsockname()[1]) is None
    assert "NOT exported" in caplog.text


async def test_an_activity_records_its_ayoconnect_call():
    buffer = MetricBuffer(100)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    env = ActivityEnvironment()
    env.metric_meter = runtime.metric_meter

    async def declined() -> None:
        with ayoconnect_call("pay"):
            raise DeclinedError("do not honour")

    async def status() -> None:
        with ayoconnect_call():  # the activity's type
            pass

    with pytest.raises(DeclinedError):
        await env.run(declined)
    await env.run(status)
    updates = [
        (u.metric.name, dict(u.attributes), u.value)
        for u in buffer.retrieve_updates()
        if u.metric.name in (AYOCONNECT_REQUESTS, AYOCONNECT_DURATION)
    ]
    counts = [(a["operation"], a["outcome"], v) for n, a, v in updates if n == AYOCONNECT_REQUESTS]
    assert counts == [("pay", "declined", 1), ("unknown", "ok", 1)]
    latencies = [v for n, _, v in updates if n == AYOCONNECT_DURATION]
    assert len(latencies) == 2 and all(0 <= v < 5 for v in latencies)
    # Outside an activity (unit tests of the activity methods) nothing is recorded, no error.
    with ayoconnect_call("pay"):
        pass


class _CountingClient:
    """``count_workflows`` as Temporal answers it, or failing like an unreachable frontend."""

    def __init__(self, counts: dict[str, int] | None) -> None:
        self.counts = counts
        self.queries: list[str] = []
        self.asked: asyncio.Event | None = None

    async def count_workflows(self, query: str):
        self.queries.append(query)
        if self.asked is not None:
            self.asked.set()
        if self.counts is None:
            raise RuntimeError("frontend unreachable")
        flow = re.search(r"KartuFlow = '(\w+)'", query)
        count = self.counts.get(flow[1], 0) if flow else sum(self.counts.values())
        return type("Count", (), {"count": count})()


async def _gauge_once(client: _CountingClient) -> list[tuple[str, dict, float]]:
    buffer = MetricBuffer(100)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    stop = asyncio.Event()
    client.asked = stop  # the first round stops the loop
    await watch_needs_attention(client, runtime.metric_meter, 0.01, stop)  # type: ignore[arg-type]
    return [(u.metric.name, dict(u.attributes), u.value) for u in buffer.retrieve_updates()]


async def test_needs_attention_gauge_counts_per_flow_from_visibility():
    client = _CountingClient({"DIRECT": 2, "REFUND": 1, "REVIEW": 3, "SOMETHING_NEW": 4})
    updates = await _gauge_once(client)
    gauge = {a["flow"]: v for n, a, v in updates if n == "kartu_needs_attention_open"}
    assert gauge == {"DIRECT": 2, "AUTH_CAPTURE": 0, "REFUND": 1, "REVIEW": 3, "OTHER": 4}
    assert all("ExecutionStatus = 'Running'" in q for q in client.queries)


async def test_needs_attention_gauge_counts_its_failures():
    updates = await _gauge_once(_CountingClient(None))
    assert not [u for u in updates if u[0] == "kartu_needs_attention_open"]
    errors = [v for n, _, v in updates if n == "kartu_needs_attention_count_errors"]
    assert sum(errors) >= 1
