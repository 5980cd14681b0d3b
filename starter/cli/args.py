"""The argument types of ``kartu``: each refuses bad input with the message the user sees.

The rules are not written here: ids are ``workflows.ids``' keys, customer ids, card tokens, URLs
and amounts the ``ayoconnect.models`` types (``CustomerId``, ``CardToken``, ``Url``,
``amount_from_text``), statuses ``workflows.models.PaymentStatus``, durations
``starter.client.validation.parse_duration``: what the CLI accepts is what ``KartuClient`` and
the gateway accept. Those modules are imported on first use, so ``kartu --help`` and shell
completion stay fast.
"""

from __future__ import annotations

import argparse
import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit and text.isprintable() else text[:limit] + "...")


@functools.cache
def _adapter(name: str) -> Any:
    from pydantic import TypeAdapter

    from ayoconnect import models

    return TypeAdapter(getattr(models, name))


def _valid(type_name: str, text: str) -> bool:
    from pydantic import ValidationError

    try:
        _adapter(type_name).validate_python(text, strict=True)
    except ValidationError:
        return False
    return True


def amount(text: str) -> Decimal:
    """Rupiah as digits with at most two decimals: ``150000``, ``150000.50``."""
    from ayoconnect.models import amount_from_text

    try:
        return amount_from_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not an amount: {exc}") from None


def _key(what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        from workflows.ids import KEY_MAX_LENGTH, InvalidKeyError, validate_key

        try:
            return validate_key(text)
        except InvalidKeyError:
            raise argparse.ArgumentTypeError(
                f"{_shown(text)} is not a {what}: use 1 to {KEY_MAX_LENGTH} letters, digits or '_'"
            ) from None

    check.__name__ = what
    return check


payment_id = _key("payment id")
registration_id = _key("registration id")


def customer_id(text: str) -> str:
    if not _valid("CustomerId", text):
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a customer id: 6 to 16 letters or digits"
        )
    return text


def card_token(text: str) -> str:
    # The value is not echoed: a card token is a credential.
    if not _valid("CardToken", text):
        raise argparse.ArgumentTypeError("a card token is exactly 40 letters or digits")
    return text


def url(text: str) -> str:
    if not _valid("Url", text):
        raise argparse.ArgumentTypeError(f"{_shown(text, 80)} is not an http:// or https:// URL")
    return text


def duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d``."""
    from starter.client.validation import parse_duration

    try:
        value = parse_duration(text)
    except ValueError:
        value = timedelta(0)
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a duration: a positive number of seconds, or 30s, 15m, 2h, 7d"
        )
    return value


def seconds(text: str) -> float:
    return duration(text).total_seconds()


def moment(text: str) -> datetime:
    """ISO 8601 with a time zone (``Z`` allowed), or ``+DURATION`` from now (``+24h``)."""
    value = text.strip()
    if value.startswith("+"):
        return datetime.now(UTC) + duration(value[1:])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a time: give ISO 8601 with a zone (2026-01-31T12:00:00+07:00) "
            "or a duration from now (+24h)"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} has no time zone: add one, e.g. {value}+07:00 or {value}Z"
        )
    return parsed


def payment_status(text: str) -> str:
    from workflows.models import PaymentStatus

    value = text.strip().upper()
    if value not in PaymentStatus.__members__:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a payment status: one of {', '.join(PaymentStatus)}"
        )
    return value


def otp(text: str) -> str:
    # The sandbox's OTP page takes 4 to 8 digits (123456 passes).
    if not re.fullmatch(r"[0-9]{4,8}", text):
        raise argparse.ArgumentTypeError("an OTP is 4 to 8 digits")
    return text


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a port number (1-65535)")
    return int(text)
