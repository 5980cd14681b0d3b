"""How ``kartu`` fails: exit 2 for bad input (nothing was started), 1 for a refusal or a failure of
the operation, in one line on stderr, or with ``--json`` one object on stdout:

    {"error": {"type": "not_found", "message": "no payment order_9", "exit_code": 1}}

``type`` is one of ``usage``, ``invalid_request`` (with ``field``), ``refused`` (with the
payment's ``status`` when known), ``idempotency_conflict``, ``not_found``, ``timeout``,
``unavailable``, ``failed``, ``interrupted``, ``internal``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input found after parsing (exit 2)."""


class Failure(Exception):
    """The operation could not be done (exit 1)."""


class CliError(Exception):
    """What ``kartu`` reports and exits with."""

    def __init__(self, kind: str, message: str, code: int, **extra: Any) -> None:
        super().__init__(message)
        self.kind, self.message, self.code = kind, " ".join(message.split()), code
        self.extra = {k: v for k, v in extra.items() if v is not None}


def classify(exc: BaseException) -> CliError | None:
    """The report of an error a command raised; None for one that is not Kartu's (a bug)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, UsageError):
        return CliError("usage", str(exc), EXIT_USAGE)
    if isinstance(exc, KeyboardInterrupt):
        return CliError("interrupted", "interrupted", EXIT_INTERRUPTED)
    # KartuClient's errors: only a command that loaded the client can have raised one, and
    # importing it here would cost a command that never did (kartu sandbox, a usage error) as
    # much as a whole Temporal command.
    if "starter.client.errors" in sys.modules:
        known = _client_error(exc)
        if known is not None:
            return known
    if isinstance(exc, Failure):
        return CliError("failed", str(exc), EXIT_FAILED)
    return None


def _client_error(exc: BaseException) -> CliError | None:
    from starter.client.errors import (
        ActionRefused,
        IdempotencyConflict,
        InvalidRequest,
        KartuError,
        KartuTimeout,
        KartuUnavailable,
        NotFound,
    )

    if isinstance(exc, InvalidRequest):
        return CliError("invalid_request", exc.message, EXIT_USAGE, field=exc.field)
    if isinstance(exc, ActionRefused):
        status = exc.status.value if exc.status is not None else None
        return CliError("refused", f"refused: {exc.reason}", EXIT_FAILED, status=status)
    if isinstance(exc, IdempotencyConflict):
        return CliError("idempotency_conflict", exc.message, EXIT_FAILED, field=exc.field)
    if isinstance(exc, NotFound):
        return CliError("not_found", exc.message, EXIT_FAILED)
    if isinstance(exc, KartuTimeout):
        return CliError("timeout", f"timed out: {exc.message}", EXIT_FAILED)
    if isinstance(exc, KartuUnavailable):
        return CliError("unavailable", f"Temporal unavailable: {exc.message}", EXIT_FAILED)
    if isinstance(exc, KartuError):
        return CliError("failed", str(exc), EXIT_FAILED)
    return None


def report(prog: str, error: CliError, *, json_output: bool) -> int:
    """Print ``error`` (one line on stderr, or one JSON object on stdout); its exit code."""
    if json_output:
        body = {"type": error.kind, "message": error.message, **error.extra}
        body["exit_code"] = error.code
        sys.stdout.write(json.dumps({"error": body}, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"{prog}: error: {error.message}\n")
    sys.stdout.flush()
    sys.stderr.flush()
    return error.code
