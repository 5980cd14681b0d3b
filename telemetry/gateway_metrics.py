"""The gateway's Prometheus metrics (``prometheus_client``), on a listener of their own.

The gateway's port faces Ayoconnect (callbacks) and backends: metrics never go out there. They
are served on ``KARTU_GATEWAY_METRICS_HOST:KARTU_GATEWAY_METRICS_PORT`` (default: the gateway's
host, port 9465; 0 turns them off), for Prometheus on the internal network.

- ``kartu_gateway_requests_total{method,route,status}``: requests by route *template*
  (``/payments/{payment_id}``, never the id itself; ``unmatched`` for paths no route takes).
- ``kartu_gateway_request_duration_seconds{method,route}``: their latency.
- ``kartu_gateway_callbacks_total{type,result}``: Ayoconnect callbacks; ``result`` is
  ``delivered`` / ``duplicate`` / ``late`` (matched), ``unmatched``, ``rejected_signature`` /
  ``rejected_invalid`` (refused), ``unavailable`` (503, Ayoconnect retries).
- ``process_*``: the process's CPU, memory, open files.

Each app has its own registry (tests build many apps in one process).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from starlette.types import ASGIApp, Scope

from .asgi import RequestObserver

log = logging.getLogger("kartu.metrics")

UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CALLBACK_TYPES = frozenset({"CARD_BINDING", "PAYMENT"})

# ``*_created`` series double every counter for a timestamp nobody graphs.
prometheus_client.disable_created_metrics()


@dataclass
class MetricsListener:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    async def aclose(self) -> None:
        # shutdown() waits for the serving loop's next poll (up to half a second).
        await asyncio.to_thread(self.close)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "kartu_gateway_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "kartu_gateway_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.callbacks = Counter(
            "kartu_gateway_callbacks",
            "Ayoconnect callbacks by type and result",
            ["type", "result"],
            registry=self.registry,
        )

    def callback(self, kind: str | None, result: str) -> None:
        self.callbacks.labels(kind if kind in CALLBACK_TYPES else "unknown", result).inc()

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)

    def serve(self, host: str, port: int) -> MetricsListener | None:
        """Serve ``/metrics`` on ``host:port`` in a thread; None (logged as an error) if the port
        cannot be bound: the gateway keeps taking callbacks without its metrics."""
        try:
            server, thread = prometheus_client.start_http_server(
                port, addr=host, registry=self.registry
            )
        except OSError as exc:
            log.error("gateway metrics NOT exported on %s:%s: %s", host, port, exc)
            return None
        listener = MetricsListener(server, thread)
        log.info("gateway metrics on http://%s:%s/metrics", host, listener.port)
        return listener


class RequestMetrics(RequestObserver):
    """ASGI middleware: counts and times each HTTP request under its route template."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        self.metrics.request(scope["method"], route_template(scope), status, seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template (the router put it in ``scope``), else ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
