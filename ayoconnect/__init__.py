"""Ayoconnect Card Acceptance API: client, models, errors, card encryption.

The package's names are loaded on first use (PEP 562): ``import ayoconnect.models`` (every
workflow, the CLI's argument types) must not import the HTTP client (httpx) and the card
encryption (joserfc, bcrypt) that only the worker's activities, the gateway and the sandbox use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each public name (``__all__``) and the submodule defining it.
_SOURCES = {
    "AyoconnectClient": "client",
    "new_correlation_id": "client",
    "wire_timestamp": "client",
    "GatewayCode": "codes",
    "ServiceCode": "codes",
    "AmbiguousError": "errors",
    "AuthenticationError": "errors",
    "AyoconnectError": "errors",
    "ConflictError": "errors",
    "DeclinedError": "errors",
    "FinalError": "errors",
    "InvalidRequestError": "errors",
    "NotFoundError": "errors",
    "RuleViolationError": "errors",
    "TransientError": "errors",
    "callback_signature": "security",
    "encrypt_card": "security",
    "verify_callback_signature": "security",
    "AyoconnectSettings": "settings",
}

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


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        # AttributeError (not ImportError): ``from ayoconnect import models`` then imports the
        # submodule, and hasattr() answers False.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{source}", __name__), name)
    globals()[name] = value  # the next lookup skips __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})
