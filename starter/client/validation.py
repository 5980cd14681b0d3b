"""Input checks of ``KartuClient``: one ``InvalidRequest`` naming the field, values hidden.

The rules themselves are written once, in ``ayoconnect.models`` (``CustomerId``, ``CardToken``,
``Url``, ``AMOUNT_TEXT_PATTERN`` / ``amount_from_text``...) and ``workflows.ids`` (payment and
registration ids); the gateway's schemas and the CLI's argument types use the same ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ayoconnect.models import amount_from_text, money
from workflows.ids import InvalidKeyError

from .errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
_MAX_IDEMPOTENCY_KEY = 200


def _field_of(loc: Iterable[Any]) -> str | None:
    parts = [str(p) for p in loc]
    return ".".join(parts) or None


def _validated(model: type[M], data: dict[str, Any], rename: dict[str, str] | None = None) -> M:
    """``model(**data)`` or one InvalidRequest naming the first bad field (values hidden)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = _field_of(first["loc"])
        if field and rename:
            field = rename.get(field, field)
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"{field}: {message}" if field else message, field) from None


def _key(build: Callable[[str], str], value: Any, field: str) -> str:
    try:
        return build(value)
    except (InvalidKeyError, TypeError, AttributeError) as exc:
        raise InvalidRequest(f"{field}: {exc}", field) from None


def _amount(value: Any, field: str = "amount") -> Decimal:
    """A Decimal or an int as it is; a string by the rule the gateway and the CLI apply."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{field}: amount must be a decimal string", field)
    try:
        return amount_from_text(value) if isinstance(value, str) else money(value)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"{field}: {exc}", field) from None


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_IDEMPOTENCY_KEY:
        raise InvalidRequest(
            f"idempotency_key must be 1 to {_MAX_IDEMPOTENCY_KEY} characters", "idempotency_key"
        )
    if not value.isprintable():
        raise InvalidRequest("idempotency_key must be printable characters", "idempotency_key")
    return value


def _text(value: Any, field: str, max_length: int = 255) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidRequest(f"{field} must be 1 to {max_length} characters", field)
    return value


def _enum(kind: type[T], value: Any, field: str) -> T:
    try:
        return kind(str(value).upper())  # type: ignore[call-arg]
    except ValueError:
        allowed = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
        raise InvalidRequest(f"{field} must be one of {allowed}", field) from None


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d`` (the CLI's durations, ``KARTU_RECONCILE_*``);
    ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration: seconds, or 30s, 15m, 2h, 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
