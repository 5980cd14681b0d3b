"""Ayoconnect errors → Temporal ``ApplicationError``: the retry decision, made once.

- TransientError → retryable (Temporal's backoff retries it).
- AmbiguousError → retryable; the next attempt of a money-moving activity looks the payment
  up before it resends (see ``AyoconnectActivities``).
- AuthenticationError → retryable: a 401/403 is most often a credential rotation in progress,
  which a later attempt rides over; a request refused for its credentials did not move money.
  When the retries run out the workflow sees a failure without a definite answer, never a "no".
- Every FinalError → non-retryable.
Each is an ApplicationError whose ``type`` is the class name, details = ``[{"response_code",
"gateway_code", "http_status", "operation", "message"}]`` for the workflow.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from ayoconnect.errors import (
    AmbiguousError,
    AuthenticationError,
    AyoconnectError,
    FinalError,
    TransientError,
)


def error_details(err: AyoconnectError) -> dict[str, Any]:
    return {
        "response_code": err.response_code,
        "gateway_code": err.gateway_code.name if err.gateway_code is not None else None,
        "http_status": err.http_status,
        "operation": err.operation,
        "message": err.message,
    }


def to_application_error(err: AyoconnectError) -> ApplicationError:
    details = error_details(err)
    if isinstance(err, TransientError | AmbiguousError | AuthenticationError):
        return ApplicationError(str(err), details, type=type(err).__name__, non_retryable=False)
    if isinstance(err, FinalError):
        return ApplicationError(str(err), details, type=type(err).__name__, non_retryable=True)
    # An AyoconnectError outside the tree: unknown, so do not risk repeating it.
    return ApplicationError(str(err), details, type="FinalError", non_retryable=True)


def invalid_request(err: ValueError) -> ApplicationError:
    """The client refused the request before sending it: retrying cannot help."""
    message = str(err) if not hasattr(err, "errors") else "request failed validation"
    return ApplicationError(
        message,
        {"response_code": None, "gateway_code": None, "http_status": None, "message": message},
        type="InvalidRequestError",
        non_retryable=True,
    )
