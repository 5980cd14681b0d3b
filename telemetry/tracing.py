"""OpenTelemetry traces: off, at no cost, unless the standard ``OTEL_*`` variables turn them on.

    tracing.configure_tracing("kartu-worker")   # at a process's start, before it connects

On when ``OTEL_TRACES_EXPORTER`` names exporters (``otlp``, ``console``), or when it is unset and
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (then ``otlp``).
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keeps it off. The SDK reads the rest
itself: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (the service name defaults to the
process's, e.g. ``kartu-worker``), ``OTEL_TRACES_SAMPLER(_ARG)``, ``OTEL_EXPORTER_OTLP_*``
(endpoint, headers, certificate, timeout, compression), ``OTEL_BSP_*``. OTLP goes over
http/protobuf; ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` needs
``opentelemetry-exporter-otlp-proto-grpc`` installed.

What is traced once on, so that one payment is one trace:
- Temporal: ``TracingInterceptor`` on every client ``starter.connection.connect`` builds (the
  gateway's, the ``KartuClient``'s, the worker's). It is a worker interceptor too, and a worker
  built on the client inherits it: the trace context rides in Temporal headers from StartWorkflow /
  StartUpdateWithStartWorkflow to RunWorkflow, StartActivity and RunActivity.
- HTTP out: every httpx transport of the process (Ayoconnect, merchant confirmations).
- HTTP in: the gateway's FastAPI app (``instrument_app``), the sandbox's.
A ``KartuClient`` inside a backend that installed its own OpenTelemetry SDK tracer provider
joins that backend's traces without calling anything here.

Never recorded (card data, secrets): these instrumentations never read request or response
bodies; query strings are dropped from URL attributes and card tokens from paths; header capture
stays opt-in (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*``) and credential headers
(``SENSITIVE_HEADERS``) are redacted even when an operator captures them.

Off costs nothing: the SDK is not imported, ``temporal_interceptors()`` is empty, no middleware
is added and no transport is patched.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from temporalio.client import Interceptor

# Redacted from captured headers whatever the operator asks to capture: the Ayoconnect bearer
# token, the gateway API key, the callback signature, cookies.
SENSITIVE_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
)
# Probes and scrapes every few seconds would drown the payments.
UNTRACED_PATHS = ("/healthz$", "/metrics$")
_SENSITIVE_ATTRIBUTES = frozenset(
    f"http.{side}.header.{name.replace('-', '_')}"
    for side in ("request", "response")
    for name in SENSITIVE_HEADERS
)
_URL_ATTRIBUTES = ("http.url", "url.full")
_PATH_ATTRIBUTES = ("http.target", "url.path")


class TracingConfigError(ValueError):
    """``OTEL_*`` settings Kartu cannot honour (an unknown exporter or protocol)."""


@dataclass(frozen=True)
class _Tracing:
    provider: TracerProvider
    tracer: Tracer


_active: _Tracing | None = None


def configure_tracing(service: str, *, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on for this process if ``OTEL_*`` asks for it; True when on.

    ``exporter`` (tests: an in-memory one) turns it on regardless of the environment, exports
    each span as it ends, and leaves the process-wide tracer provider alone.
    """
    global _active
    if _active is not None:
        return True
    names = exporter_names(os.environ) if exporter is None else []
    if exporter is None and not names:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    provider = TracerProvider(resource=Resource.create({} if named else {SERVICE_NAME: service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for made in (make_exporter(name) for name in names):
            provider.add_span_processor(BatchSpanProcessor(made))
        # Libraries and host code that ask the global API get the same provider.
        trace.set_tracer_provider(provider)
    _instrument_httpx(provider)
    _active = _Tracing(provider, provider.get_tracer("kartu"))
    return True


def shutdown_tracing() -> None:
    """Flush and turn tracing off again (tests; the SDK also flushes at interpreter exit)."""
    global _active
    if _active is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    _active.provider.shutdown()
    _active = None


def enabled() -> bool:
    return _active is not None


def temporal_interceptors() -> list[Interceptor]:
    """Interceptors for ``Client.connect`` (a worker built on the client inherits them):
    empty while tracing is off."""
    if _active is not None:
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return [TracingInterceptor(_active.provider.get_tracer("temporalio.contrib.opentelemetry"))]
    if _host_has_tracer_provider():
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return [TracingInterceptor()]
    return []


def instrument_app(app: FastAPI, *, redact_path: Callable[[str], str] | None = None) -> None:
    """Trace the app's requests (no-op while tracing is off). ``redact_path`` rewrites the
    path recorded on the span (the span's name is the route template already)."""
    if _active is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.util.http import get_custom_headers

    excluded = os.environ.get(
        "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", os.environ.get("OTEL_PYTHON_EXCLUDED_URLS", "")
    )

    def server_request_hook(span: Span, scope: dict[str, Any]) -> None:
        if span is not None and span.is_recording():
            path = scope.get("path", "")
            scrub_span(span, path=redact_path(path) if redact_path else path)

    provider = _active.provider
    serving = app.router.lifespan_context

    @asynccontextmanager
    async def flushed_at_shutdown(app: Any) -> AsyncIterator[Any]:
        async with serving(app) as state:
            yield state
        # uvicorn re-raises the SIGTERM it caught once the app has stopped, and a process
        # killed by a signal runs no atexit hook: export the buffered spans now.
        await asyncio.to_thread(provider.force_flush, 5000)

    app.router.lifespan_context = flushed_at_shutdown
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        server_request_hook=server_request_hook,
        excluded_urls=",".join(filter(None, [excluded, *UNTRACED_PATHS])),
        exclude_spans=["receive", "send"],
        http_capture_headers_sanitize_fields=[
            *get_custom_headers("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"),
            *SENSITIVE_HEADERS,
        ],
    )


def scrub_span(span: Span, *, path: str | None = None) -> None:
    """Drop query strings from the span's URL attributes (``path`` replaces the path) and
    redact credential headers an operator chose to capture."""
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            parts = urlsplit(value)
            shown = parts.path if path is None else path
            span.set_attribute(key, urlunsplit((parts.scheme, parts.netloc, shown, "", "")))
    for key in _PATH_ATTRIBUTES:
        if isinstance(attributes.get(key), str):
            value = str(attributes[key])
            span.set_attribute(key, path if path is not None else value.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "")
    for key in _SENSITIVE_ATTRIBUTES.intersection(attributes):
        span.set_attribute(key, ["[REDACTED]"])


def _instrument_httpx(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    def request_hook(span: Span, _request: Any) -> None:
        if span.is_recording():
            scrub_span(span)

    def response_hook(span: Span, _request: Any, _response: Any) -> None:
        if span.is_recording():
            scrub_span(span)

    async def async_request_hook(span: Span, request: Any) -> None:
        request_hook(span, request)

    async def async_response_hook(span: Span, request: Any, response: Any) -> None:
        response_hook(span, request, response)

    HTTPXClientInstrumentor().instrument(
        tracer_provider=provider,
        request_hook=request_hook,
        response_hook=response_hook,
        async_request_hook=async_request_hook,
        async_response_hook=async_response_hook,
    )


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters ``OTEL_*`` asks for (``[]``: tracing stays off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    listed = environ.get("OTEL_TRACES_EXPORTER")
    if listed is None:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return ["otlp"] if any(environ.get(v) for v in endpoints) else []
    names = [name.strip().lower() for name in listed.split(",") if name.strip()]
    return [] if "none" in names else names


def make_exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # One span per line, on stderr beside the logs: stdout may carry a command's output,
        # and two buffered streams into one file would cut lines in half.
        return ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
    if name != "otlp":
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER={name!r}: Kartu knows otlp and console")
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ).strip()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise TracingConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc"
            ) from None
        return GrpcSpanExporter()
    raise TracingConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use http/protobuf or grpc")


def _host_has_tracer_provider() -> bool:
    """True when code in this process (a backend embedding ``KartuClient``) installed an
    OpenTelemetry SDK tracer provider. Without the API imported, nobody did."""
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return False
    provider = api.get_tracer_provider()
    return not isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider)
