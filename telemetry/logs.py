"""Structured logs: one JSON object per line for machines, a readable line on a terminal.

    configure_logging("kartu-worker")     # once, at a process's start

The format: ``KARTU_LOG_FORMAT=json|text``; without it, text when stderr is a terminal and JSON
otherwise (a file, a pipe, a container's log driver).

Why the standard library and not structlog: every line that matters already goes through
``logging``: Temporal's ``workflow.logger`` and ``activity.logger``, uvicorn, httpx, Kartu's own
modules. One ``logging.Formatter`` sees them all; structlog would add a second logging API and
still need its ``ProcessorFormatter`` for exactly these foreign records. ``json`` does the
escaping, so a message can never break out of its line.

Each line carries the ids known where it was logged, as top-level fields:
- in a workflow: what the SDK's ``workflow.logger`` puts in ``extra["temporal_workflow"]`` (its
  documented ``workflow_info_on_extra``): workflow id, run id, type;
- in an activity: ``activity.logger``'s ``extra["temporal_activity"]``, and for any other
  logger called from an activity (the Ayoconnect client), ``activity.info()``;
- in an HTTP request (gateway, sandbox): what ``LogContext`` bound (request id, the caller's
  X-Correlation-ID) and ``bind`` added (the payment or registration it is about);
- ``extra={"payment_id": ...}`` from the caller;
- the current OpenTelemetry span's trace and span ids, when tracing is on.
From a workflow id Kartu derives the payment or registration id and the X-Correlation-ID that
Ayoconnect sees (``workflows.ids``), so one search finds a payment in the gateway's, the
worker's and the provider's logs.

Card data: Kartu never logs it (tests/security scans the logs). As a last line of defence,
digit runs shaped like a card number (13 to 19 digits, the first 2 to 6, Luhn-valid; spaces or
dashes between them) are masked in every message and traceback.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

LOG_FORMAT_ENV = "KARTU_LOG_FORMAT"
HANDLER_NAME = "kartu"
# Top-level fields of a JSON line, in this order; text lines show the first ones.
ID_FIELDS = (
    "payment_id",
    "registration_id",
    "workflow_id",
    "correlation_id",
    "request_id",
    "run_id",
    "workflow_type",
    "activity_type",
    "activity_id",
    "attempt",
    "trace_id",
    "span_id",
)
_TEXT_FIELDS = (*ID_FIELDS[:5], "activity_type")
# Ids come from callers, headers and bodies: only plain ones may land in a line.
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
_PAN = re.compile(r"(?<![0-9])[2-6](?:[ -]?[0-9]){12,18}(?![0-9])")
PAN_MASK = "[card number masked]"

_bound: ContextVar[dict[str, str] | None] = ContextVar("kartu_log_ids", default=None)


def configure_logging(
    service: str,
    *,
    level: int | str = "INFO",
    fmt: str | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every logger of the process to one handler on ``stream`` (stderr), in ``fmt``
    (``json`` or ``text``; default ``KARTU_LOG_FORMAT``, else text on a terminal, else JSON).
    Calling it again replaces the handler it installed, nothing else."""
    stream = stream or sys.stderr
    chosen = (fmt or os.environ.get(LOG_FORMAT_ENV) or "").strip().lower()
    if not chosen:
        chosen = "text" if _isatty(stream) else "json"
    if chosen not in ("json", "text"):
        raise ValueError(f"{LOG_FORMAT_ENV} must be json or text, not {chosen!r}")
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter(service) if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    if root.getEffectiveLevel() > logging.DEBUG:
        # httpx logs every request's full URL, query string included, at INFO: noise, and
        # not its to print. Kartu's Ayoconnect client logs its calls itself (at DEBUG).
        logging.getLogger("httpx").setLevel(logging.WARNING)
    # The ids are fields now: the SDK's copy of them at the end of each message is noise.
    workflow = sys.modules.get("temporalio.workflow")
    if workflow is not None:
        workflow.logger.workflow_info_on_message = False
    activity = sys.modules.get("temporalio.activity")
    if activity is not None:
        activity.logger.activity_info_on_message = False
    return handler


# --- ids of the current request or task -------------------------------------------------------


def bind(**ids: object) -> None:
    """Put ids on every line logged from here on in this context (a request, a task).
    Unsafe values (not plain letters, digits, ``_.:-``) are dropped."""
    clean = {k: str(v) for k, v in ids.items() if v is not None and _SAFE_ID.fullmatch(str(v))}
    current = _bound.get()
    if current is None:
        _bound.set(clean)
    else:
        current.update(clean)  # shared with the request's other tasks: same dict


@contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """A fresh set of ids for the block (one request): ``bind`` inside adds to it."""
    token = _bound.set({})
    try:
        bind(**ids)
        yield
    finally:
        _bound.reset(token)


def request_ids(path_params: Mapping[str, Any], body: Any) -> dict[str, str]:
    """The payment or registration an HTTP request is about: path parameters ``payment_id`` /
    ``registration_id``, the same fields of a JSON body, or an Ayoconnect ``transactionId``."""
    found: dict[str, str] = {}
    sources = [path_params, body if isinstance(body, Mapping) else {}]
    for source in sources:
        for name in ("payment_id", "registration_id"):
            value = source.get(name)
            if isinstance(value, str) and name not in found:
                found[name] = value
    transaction_id = sources[1].get("transactionId")
    ids = sys.modules.get("workflows.ids")
    if not found and isinstance(transaction_id, str) and ids is not None:
        try:
            found["workflow_id"] = ids.parse_callback_transaction_id(transaction_id).workflow_id
        except ValueError:
            pass
    return found


class LogContext:
    """ASGI middleware: each HTTP request's lines carry a request id (the caller's
    ``X-Request-ID`` when it is a plain id, else a new one) and, with ``correlation_header``
    (the sandbox: Ayoconnect's ``X-Correlation-ID``), the caller's correlation id."""

    def __init__(self, app: ASGIApp, correlation_header: str | None = None) -> None:
        self.app = app
        self.correlation_header = correlation_header.lower().encode() if correlation_header else b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given: dict[bytes, str] = {}
        for name, value in scope.get("headers", []):
            if name in (b"x-request-id", self.correlation_header):
                given[name] = value.decode("latin-1")
        request_id = given.get(b"x-request-id", "")
        if not _SAFE_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex[:16]
        with log_context(request_id=request_id, correlation_id=given.get(self.correlation_header)):
            await self.app(scope, receive, send)


# --- formatting -------------------------------------------------------------------------------


def record_ids(record: logging.LogRecord) -> dict[str, Any]:
    """The ids of a record, from every source above, derived ones included."""
    found: dict[str, Any] = {}
    bound = _bound.get()
    if bound:
        found.update(bound)
    for name in ID_FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            found[name] = value
    details = record.__dict__.get("temporal_workflow")
    if isinstance(details, Mapping):
        _take(found, details, workflow_id="workflow_id", run_id="run_id")
        _take(found, details, workflow_type="workflow_type")
    details = record.__dict__.get("temporal_activity")
    if not isinstance(details, Mapping):
        details = _current_activity()
    if details:
        _take(found, details, workflow_id="workflow_id", run_id="workflow_run_id")
        _take(found, details, workflow_type="workflow_type", activity_type="activity_type")
        _take(found, details, activity_id="activity_id", attempt="attempt")
    found.update(_trace_ids())
    # Strings, except counters (attempt): one type per field for log stores that index them.
    ids: dict[str, Any] = {k: v if isinstance(v, int) else str(v) for k, v in found.items()}
    ids = {k: v for k, v in ids.items() if _SAFE_ID.fullmatch(str(v))}
    module = sys.modules.get("workflows.ids")  # loaded in the worker and the gateway
    if module is not None:
        derived = _derived(
            module, ids.get("workflow_id"), ids.get("payment_id"), ids.get("registration_id")
        )
        ids.update({k: v for k, v in derived.items() if k not in ids})
    return {name: ids[name] for name in ID_FIELDS if name in ids}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "service", "logger", "message", <ids>, "exception"}`` per line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": mask_card_numbers(record.getMessage()),
        }
        line.update(record_ids(record))
        if record.exc_info:
            line["exception"] = mask_card_numbers(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = mask_card_numbers(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message [payment_id=... workflow_id=...]`` for people."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = mask_card_numbers(super().format(record))
        ids = record_ids(record)
        shown = " ".join(f"{k}={ids[k]}" for k in _TEXT_FIELDS if k in ids)
        if not shown:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [{shown}]{newline}{rest}"


def mask_card_numbers(text: str) -> str:
    return _PAN.sub(_mask_if_card, text)


def _mask_if_card(match: re.Match[str]) -> str:
    digits = [int(c) for c in match.group() if c.isdigit()]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return PAN_MASK if total % 10 == 0 else match.group()


def _take(found: dict[str, Any], source: Mapping[str, Any], **names: str) -> None:
    for field, key in names.items():
        value = source.get(key)
        if value not in (None, "") and field not in found:
            found[field] = value


def _current_activity() -> dict[str, Any] | None:
    """The running activity's info, for loggers that are not ``activity.logger``. Only if the
    SDK is loaded: the sandbox process never imports it for this."""
    activity = sys.modules.get("temporalio.activity")
    if activity is None or not activity.in_activity():
        return None
    info = activity.info()
    return {
        "workflow_id": info.workflow_id,
        "workflow_run_id": info.workflow_run_id,
        "workflow_type": info.workflow_type,
        "activity_type": info.activity_type,
        "activity_id": info.activity_id,
        "attempt": info.attempt,
    }


def _trace_ids() -> dict[str, str]:
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


@lru_cache(maxsize=4096)
def _derived(
    ids: Any, workflow_id: str | None, payment_id: str | None, registration_id: str | None
) -> dict[str, str]:
    """Workflow id <-> payment / registration id, and the flow's X-Correlation-ID, by the
    rules of ``workflows.ids``."""
    found: dict[str, str] = {}
    try:
        if workflow_id is None and payment_id is not None:
            workflow_id = ids.payment_workflow_id(payment_id)
        elif workflow_id is None and registration_id is not None:
            workflow_id = ids.registration_workflow_id(registration_id)
        if workflow_id is None:
            return {}
        found["workflow_id"] = workflow_id
        key = workflow_id.partition("-")[2]
        if workflow_id.startswith((ids.PAYMENT_PREFIX, ids.REFUND_PREFIX)):
            found["payment_id"] = key
            found["correlation_id"] = ids.payment_correlation_id(key)
        elif workflow_id.startswith(ids.REGISTRATION_PREFIX):
            found["registration_id"] = key
            found["correlation_id"] = ids.correlation_id(workflow_id)
        elif workflow_id.startswith(ids.UNBIND_PREFIX):
            found["correlation_id"] = ids.correlation_id(workflow_id)
    except ValueError:  # not a Kartu key: nothing to derive
        return found
    return found


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
