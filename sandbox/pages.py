"""The customer's pages: the registration webview (card form, then OTP) and the 3DS challenge.

Plain server-rendered HTML forms, no JavaScript, so a test (or ``customer.py``) can act as the
customer with nothing but HTTP. The clear card number and CVV exist only while the card form is
checked: they are never stored, logged, or written back into a page.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib.resources import files
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .api import context_of
from .auth import page_base_url
from .charges import THREE_DS_PATH, finish_authentication
from .clock import wire_time
from .context import SandboxContext
from .expiry import sweep
from .registration import WEBVIEW_PATH, PendingCard, accept_card, finish_binding
from .sessions import Session, SessionKind, SessionState
from .test_cards import TEST_OTP, expiry_passed, luhn_valid, mask, profile_for

router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 16 * 1024
_EXPIRY = re.compile(r"^(0[1-9]|1[0-2]) */ *([0-9]{2})$")
_CVV = re.compile(r"^[0-9]{3,4}$")
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@cache
def _template(name: str) -> Template:
    return Template(files("sandbox").joinpath("templates", name).read_text(encoding="utf-8"))


def render(name: str, title: str, status: int = 200, **values: str) -> HTMLResponse:
    """Fill a page; every value is escaped unless its name ends in ``_html``."""
    filled = {
        key.removesuffix("_html"): value if key.endswith("_html") else html.escape(value)
        for key, value in values.items()
    }
    content = _template(name).substitute(filled)
    page = _template("base.html").substitute(title=html.escape(title), content=content)
    return HTMLResponse(page, status_code=status, headers=_NO_STORE)


def message(title: str, text: str, status: int) -> HTMLResponse:
    return render("message.html", title, status, heading=title, message=text)


def _errors_html(errors: list[str]) -> str:
    if not errors:
        return ""
    items = "".join(f"<li>{html.escape(e)}</li>" for e in errors)
    return f'<ul class="errors">{items}</ul>'


def _open_session(ctx: SandboxContext, session_id: str, kind: SessionKind) -> Session | Response:
    """The session if it can still be used, else the page that says why not."""
    sweep(ctx)
    session = ctx.sessions.get(session_id, kind)
    if session is None:
        return message("Page not found", "This link is not valid.", 404)
    if session.state is SessionState.EXPIRED:
        return message("Session expired", "This session has expired. Please start again.", 410)
    if session.state is SessionState.DONE:
        return message("Already completed", "This session is already complete.", 409)
    return session


# --- registration webview ---------------------------------------------------------------------


@router.get(WEBVIEW_PATH + "{session_id}")
async def webview_page(request: Request, session_id: str) -> Response:
    ctx = context_of(request)
    session = _open_session(ctx, session_id, SessionKind.WEBVIEW)
    if isinstance(session, Response):
        return session
    if session.state is SessionState.OTP:
        return RedirectResponse(_url(request, f"{WEBVIEW_PATH}{session_id}/otp"), status_code=303)
    return _card_form(request, ctx, session, [], cardholder_name="", expiry="")


@router.post(WEBVIEW_PATH + "{session_id}")
async def webview_card(request: Request, session_id: str) -> Response:
    ctx = context_of(request)
    session = _open_session(ctx, session_id, SessionKind.WEBVIEW)
    if isinstance(session, Response):
        return session
    if session.state is SessionState.OTP:
        return RedirectResponse(_url(request, f"{WEBVIEW_PATH}{session_id}/otp"), status_code=303)
    form = await _form(request)
    if form is None:
        return message("Bad request", "The form could not be read.", 400)
    name = form.get("cardholderName", "").strip()
    expiry = form.get("expiry", "").strip()
    card, errors = _check_card(
        form.get("cardNumber", ""), name, expiry, form.get("cvv", ""), ctx.clock.now()
    )
    if card is None:
        return _card_form(
            request, ctx, session, errors, cardholder_name=name, expiry=expiry, status=400
        )
    with ctx.db.transaction():
        accept_card(ctx, session, card)
    return RedirectResponse(_url(request, f"{WEBVIEW_PATH}{session_id}/otp"), status_code=303)


@router.get(WEBVIEW_PATH + "{session_id}/otp")
async def webview_otp_page(request: Request, session_id: str) -> Response:
    ctx = context_of(request)
    session = _open_session(ctx, session_id, SessionKind.WEBVIEW)
    if isinstance(session, Response):
        return session
    if session.state is not SessionState.OTP:
        return RedirectResponse(_url(request, f"{WEBVIEW_PATH}{session_id}"), status_code=303)
    card = session.data["card"]
    summary = f"<p>Confirm {html.escape(card['brand'])} {html.escape(card['maskedCard'])}.</p>"
    return render(
        "otp.html",
        "Verify your card",
        heading="Verify your card",
        summary_html=summary,
        action=_url(request, f"{WEBVIEW_PATH}{session_id}/otp"),
        expires_at=wire_time(session.expires_at),
    )


@router.post(WEBVIEW_PATH + "{session_id}/otp")
async def webview_otp(request: Request, session_id: str) -> Response:
    ctx = context_of(request)
    session = _open_session(ctx, session_id, SessionKind.WEBVIEW)
    if isinstance(session, Response):
        return session
    if session.state is not SessionState.OTP:
        return RedirectResponse(_url(request, f"{WEBVIEW_PATH}{session_id}"), status_code=303)
    form = await _form(request)
    otp = "" if form is None else form.get("otp", "").strip()
    with ctx.db.transaction():
        result = finish_binding(ctx, session, otp)
    return RedirectResponse(result.redirect_url, status_code=303)


def _card_form(
    request: Request,
    ctx: SandboxContext,
    session: Session,
    errors: list[str],
    *,
    cardholder_name: str,
    expiry: str,
    status: int = 200,
) -> HTMLResponse:
    return render(
        "webview_card.html",
        "Add a card",
        status,
        merchant=ctx.ayoconnect.merchant_code,
        errors_html=_errors_html(errors),
        action=_url(request, f"{WEBVIEW_PATH}{session.session_id}"),
        cardholder_name=cardholder_name,
        expiry=expiry,
        expires_at=wire_time(session.expires_at),
    )


def _check_card(
    number: str, name: str, expiry: str, cvv: str, now: datetime
) -> tuple[PendingCard | None, list[str]]:
    pan = re.sub(r"[ -]", "", number)
    errors: list[str] = []
    if not luhn_valid(pan):
        errors.append("The card number is not valid.")
    if not 1 <= len(name) <= 100:
        errors.append("The name on the card is required (at most 100 characters).")
    match = _EXPIRY.match(expiry)
    if match is None:
        errors.append("The expiry must be MM/YY.")
    elif expiry_passed(match.group(1), match.group(2), now):
        errors.append("The card has expired: the expiry must be in the future.")
    if not _CVV.match(cvv.strip()):
        errors.append("The CVV must be 3 or 4 digits.")
    if errors or match is None:
        return None, errors
    profile = profile_for(pan)
    card = PendingCard(
        masked_card=mask(pan),
        brand=profile.brand,
        expiry_month=match.group(1),
        expiry_year=f"20{match.group(2)}",
        outcome=profile.outcome,
    )
    return card, []


# --- 3DS challenge ----------------------------------------------------------------------------


@router.get(THREE_DS_PATH + "{session_id}")
async def challenge_page(request: Request, session_id: str) -> Response:
    ctx = context_of(request)
    session = _open_session(ctx, session_id, SessionKind.THREE_DS)
    if isinstance(session, Response):
        return session
    payment = ctx.ledger.payment(session.reference)
    if payment is None:
        return message("Page not found", "This link is not valid.", 404)
    summary = (
        f'<p class="amount">{html.escape(payment.currency)} {_amount(payment.amount)}</p>'
        f"<p>to merchant {html.escape(ctx.ayoconnect.merchant_code)} with "
        f"{html.escape(payment.brand)} {html.escape(payment.masked_card)}</p>"
    )
    return render(
        "otp.html",
        "3-D Secure",
        heading="Confirm your payment",
        summary_html=summary,
        action=_url(request, f"{THREE_DS_PATH}{session_id}"),
        expires_at=wire_time(session.expires_at),
    )


@router.post(THREE_DS_PATH + "{session_id}")
async def challenge_answer(request: Request, session_id: str) -> Response:
    ctx = context_of(request)
    session = _open_session(ctx, session_id, SessionKind.THREE_DS)
    if isinstance(session, Response):
        return session
    form = await _form(request)
    otp = "" if form is None else form.get("otp", "").strip()
    with ctx.db.transaction():
        payment = finish_authentication(ctx, session, passed=otp == TEST_OTP)
    if payment is not None and payment.redirect_url:
        return RedirectResponse(payment.redirect_url, status_code=303)
    if otp == TEST_OTP:
        return message("Payment confirmed", "You can return to the merchant.", 200)
    return message("Authentication failed", "The payment was not confirmed.", 200)


# --- helpers ----------------------------------------------------------------------------------


def _url(request: Request, path: str) -> str:
    # Absolute links on the public base, so pages work behind a proxy or a path prefix.
    return page_base_url(context_of(request), request) + path


async def _form(request: Request) -> dict[str, str] | None:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    if len(await request.body()) > MAX_FORM_BYTES:
        return None
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"
