"""``/_sandbox/*``: the test and operator controls that real Ayoconnect does not have.

Unauthenticated on purpose: the sandbox is a local tool bound to loopback by default.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from .api import context_of
from .clock import wire_time
from .context import SandboxContext
from .expiry import sweep
from .faults import FaultsConfig
from .test_cards import TEST_CARDS, TEST_OTP

router = APIRouter(prefix="/_sandbox", tags=["sandbox controls"])
TEN_YEARS = 10 * 366 * 24 * 3600


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=TEN_YEARS)


class CallbackTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, pattern=r"^https?://\S+$")


def _clock_json(ctx: SandboxContext) -> dict[str, Any]:
    now = ctx.clock.now()
    return {
        "now": wire_time(now),
        "utc": now.isoformat(),
        "offsetSeconds": ctx.clock.offset_seconds,
    }


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/public-key", response_class=PlainTextResponse)
async def public_key(request: Request) -> PlainTextResponse:
    """The RSA public key (PEM) to encrypt ``encryptedCard`` to."""
    return PlainTextResponse(
        context_of(request).public_key_pem, media_type="application/x-pem-file"
    )


@router.get("/test-cards")
async def test_cards() -> dict[str, Any]:
    return {"otp": TEST_OTP, "cards": [card.as_json() for card in TEST_CARDS]}


@router.get("/clock")
async def clock(request: Request) -> dict[str, Any]:
    return _clock_json(context_of(request))


@router.post("/clock/advance")
async def advance_clock(request: Request, body: ClockAdvance) -> dict[str, Any]:
    """Move the sandbox clock forward; expiries that fall due are applied before answering."""
    ctx = context_of(request)
    ctx.clock.advance(body.seconds)
    applied = sweep(ctx)
    return {**_clock_json(ctx), "expired": applied}


@router.get("/ledger")
async def ledger(request: Request) -> dict[str, Any]:
    ctx = context_of(request)
    sweep(ctx)
    return {
        "now": wire_time(ctx.clock.now()),
        **ctx.ledger.snapshot(),
        "sessions": ctx.sessions.snapshot(),
        "callbacks": ctx.callbacks.snapshot(),
    }


@router.post("/reset")
async def reset(request: Request) -> dict[str, str]:
    """Empty ledger, tokens, sessions and callbacks; clock and faults back to the settings."""
    await context_of(request).reset()
    return {"status": "reset"}


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return context_of(request).faults.snapshot()


@router.put("/faults")
async def put_faults(request: Request, body: FaultsConfig) -> dict[str, Any]:
    """Replace the fault configuration (counters keep counting)."""
    ctx = context_of(request)
    ctx.faults.configure(body)
    return ctx.faults.snapshot()


@router.delete("/faults")
async def delete_faults(request: Request) -> dict[str, Any]:
    ctx = context_of(request)
    ctx.faults.clear()
    return ctx.faults.snapshot()


@router.get("/callback-url")
async def get_callback_url(request: Request) -> dict[str, str | None]:
    return {"url": context_of(request).callbacks.url}


@router.put("/callback-url")
async def put_callback_url(request: Request, body: CallbackTarget) -> dict[str, str | None]:
    """Where callbacks go from now on (null: record only); a reset restores the setting."""
    ctx = context_of(request)
    ctx.callbacks.url = body.url
    return {"url": ctx.callbacks.url}
