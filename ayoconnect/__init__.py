"""Ayoconnect Card Acceptance API: client, models, errors, card encryption."""

from .client import AyoconnectClient, new_correlation_id, wire_timestamp
from .codes import GatewayCode, ServiceCode
from .errors import (
    AmbiguousError,
    AuthenticationError,
    AyoconnectError,
    ConflictError,
    DeclinedError,
    FinalError,
    InvalidRequestError,
    NotFoundError,
    RuleViolationError,
    TransientError,
)
from .security import callback_signature, encrypt_card, verify_callback_signature
from .settings import AyoconnectSettings

__all__ = [
    "AmbiguousError",
    "AuthenticationError",
    "AyoconnectClient",
    "AyoconnectError",
    "AyoconnectSettings",
    "ConflictError",
    "DeclinedError",
    "FinalError",
    "GatewayCode",
    "InvalidRequestError",
    "NotFoundError",
    "RuleViolationError",
    "ServiceCode",
    "TransientError",
    "callback_signature",
    "encrypt_card",
    "new_correlation_id",
    "verify_callback_signature",
    "wire_timestamp",
]
