"""The common envelope of every successful answer, built through the client's own models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ayoconnect.codes import GatewayCode, ServiceCode, response_code

from .clock import wire_time
from .errors import Reply


def envelope(
    status: int,
    service: ServiceCode,
    case: GatewayCode,
    message: str,
    now: datetime,
    transaction_id: str,
) -> dict[str, Any]:
    return {
        "code": status,
        "responseCode": response_code(status, service, case),
        "message": message,
        "responseTime": wire_time(now),
        "transactionId": transaction_id,
    }


def answer(status: int, body: BaseModel) -> Reply:
    """A reply from a response model: validated on the way out, absent fields left out."""
    return Reply(status, body.model_dump(mode="json", exclude_none=True))
