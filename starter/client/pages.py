"""Cursor pages of Kartu's lists (Temporal visibility underneath) and their opaque tokens.

A ``next_page_token`` wraps Temporal's own page token with the part of the list it belongs to
(a REFUNDED search lists two kinds of workflow, one after the other) and a digest of the search
it came from: a token is refused with another search, so a page never silently comes from a
different list. The token is not signed: whatever it holds, Temporal checks its own part, and
the search itself is rebuilt from the request every time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable

from pydantic import BaseModel, Field

from .errors import InvalidRequest
from .models import CardSummary, PaymentSummary

_VERSION = 1
MAX_PAGE_SIZE = 1000
MAX_TOKEN_LENGTH = 4096


class PaymentPage(BaseModel):
    payments: list[PaymentSummary]
    next_page_token: str | None = Field(
        default=None, description="Pass as page_token for the next page; null on the last"
    )


class CardPage(BaseModel):
    cards: list[CardSummary]
    next_page_token: str | None = Field(
        default=None, description="Pass as page_token for the next page; null on the last"
    )


def page_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}", "page_size")
    return value


def encode_token(search: str, part: str, token: bytes | None) -> str:
    data = {
        "v": _VERSION,
        "s": _digest(search),
        "p": part,
        "t": base64.b64encode(token).decode() if token else None,
    }
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(value: str | None, search: str, parts: Iterable[str]) -> tuple[str, bytes | None]:
    """(part, Temporal's token) of a token ``encode_token`` made for ``search``; the first part
    and no token for None. InvalidRequest naming ``page_token`` otherwise."""
    allowed = list(parts)
    if value is None:
        return allowed[0], None
    refused = InvalidRequest(
        "page_token is not a next_page_token of this search (same filters)", "page_token"
    )
    if not isinstance(value, str) or len(value) > MAX_TOKEN_LENGTH:
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        token = data["t"]
        if (
            data["v"] != _VERSION
            or data["s"] != _digest(search)
            or data["p"] not in allowed
            or not (token is None or isinstance(token, str))
        ):
            raise refused
        return data["p"], base64.b64decode(token, validate=True) if token else None
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise refused from None


def _digest(search: str) -> str:
    return hashlib.sha256(search.encode()).hexdigest()[:24]
