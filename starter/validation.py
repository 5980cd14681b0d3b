"""Input checks of ``KartuClient``: one ``InvalidRequest`` naming the field, values hidden."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ayoconnect.models import money
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


# What the CLI and the gateway accept too: Decimal() alone would take "1e3", "1_000", " 5" and
# digits of other scripts.
_AMOUNT_TEXT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")


def _amount(value: Any, field: str = "amount") -> Decimal:
    if isinstance(value, bool):
        raise InvalidRequest(f"{field}: amount must be a decimal string", field)
    if isinstance(value, str) and not _AMOUNT_TEXT.fullmatch(value):
        raise InvalidRequest(
            f"{field}: amount must be digits with at most two decimals, e.g. 150000.00", field
        )
    try:
        return money(value)
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
