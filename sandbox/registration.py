"""Card registration (service 01), cards list (03) and unbinding (04).

Generate Webview opens a session; the customer's card form and OTP (``pages.py``) drive it to a
binding: a 40-character token for every card except the ones the table marks unbindable, and a
CARD_BINDING callback either way. A request without customerId gets a new customer id, assigned
once the first card binds; one with a customerId must name a known customer.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from ayoconnect.codes import GatewayCode, ServiceCode, response_code
from ayoconnect.models import (
    BindingCallback,
    Card,
    CardsListResponse,
    CardStatus,
    CustomerId,
    GenerateWebviewRequest,
    GenerateWebviewResponse,
    TransactionId,
    UnbindRequest,
    UnbindResponse,
    Webview,
)

from .auth import CallInfo
from .clock import wire_datetime
from .context import SandboxContext
from .envelope import answer, envelope
from .errors import Reply, not_found, rule_violation
from .ledger import CardRecord
from .sessions import Session, SessionKind, SessionState, new_session_id
from .test_cards import BINDING_FAILURES, DECLINE_CODE, TEST_OTP, Outcome

WEBVIEW = ServiceCode.GENERATE_WEBVIEW
CARDS_LIST = ServiceCode.CARDS_LIST
UNBIND = ServiceCode.UNBIND
WEBVIEW_PATH = "/webview/"
_ALNUM = string.ascii_letters + string.digits


def new_card_token() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(40))


def new_customer_id() -> str:
    return "CUST" + "".join(secrets.choice(string.digits) for _ in range(10))


def new_reference_number(now: datetime) -> str:
    return f"REF{now:%y%m%d}{secrets.token_hex(6).upper()}"


@dataclass(frozen=True)
class PendingCard:
    """What the card form leaves for the OTP step: nothing a thief could pay with."""

    masked_card: str
    brand: str
    expiry_month: str
    expiry_year: str
    outcome: Outcome


@dataclass(frozen=True)
class BindingResult:
    status: str  # ACTIVE | FAILED
    redirect_url: str
    response_code: str


def generate_webview(ctx: SandboxContext, req: GenerateWebviewRequest, call: CallInfo) -> Reply:
    customer = req.customer
    if customer.customerId is not None and not ctx.ledger.has_customer(customer.customerId):
        raise not_found(WEBVIEW, "unknown customerId")
    now = ctx.clock.now()
    reference = new_reference_number(now)
    session_id = new_session_id()
    expires_at = now + timedelta(seconds=ctx.settings.session_seconds)
    ctx.sessions.add(
        Session(
            session_id=session_id,
            kind=SessionKind.WEBVIEW,
            state=SessionState.CARD,
            reference=reference,
            data={
                "transactionId": req.transactionId,
                "customerId": customer.customerId,
                "knownCustomer": customer.customerId is not None,
                "name": customer.name,
                "email": customer.email,
                "phoneNumber": customer.phoneNumber,
                "redirectUrl": req.redirectUrl,
                "failedRedirectUrl": req.failedRedirectUrl or req.redirectUrl,
            },
            expires_at=expires_at,
            created_at=now,
        )
    )
    body = GenerateWebviewResponse(
        **envelope(201, WEBVIEW, GatewayCode.APPROVED, "Success", now, req.transactionId),
        webview=Webview(
            url=f"{call.base_url}{WEBVIEW_PATH}{session_id}", expiresAt=wire_datetime(expires_at)
        ),
        referenceNumber=reference,
    )
    return answer(201, body)


def accept_card(ctx: SandboxContext, session: Session, card: PendingCard) -> Session:
    """The card form passed its checks: remember the masked card and ask for the OTP."""
    data = dict(session.data)
    data["card"] = {
        "maskedCard": card.masked_card,
        "brand": card.brand,
        "expiryMonth": card.expiry_month,
        "expiryYear": card.expiry_year,
        "outcome": card.outcome.value,
    }
    return ctx.sessions.save(session, ctx.clock.now(), state=SessionState.OTP, data=data)


def finish_binding(ctx: SandboxContext, session: Session, otp: str) -> BindingResult:
    """The OTP step: bind the card (or fail), send the CARD_BINDING callback, say where to go."""
    now = ctx.clock.now()
    data = session.data
    card = data["card"]
    outcome = Outcome(card["outcome"])
    if not secrets.compare_digest(otp.encode(), TEST_OTP.encode()):
        failure: GatewayCode | None = GatewayCode.AUTHENTICATION_FAILED
    elif outcome in BINDING_FAILURES:
        failure = DECLINE_CODE[outcome]
    else:
        failure = None
    ctx.sessions.save(session, now, state=SessionState.DONE)
    if failure is not None:
        code = response_code(400, WEBVIEW, failure)
        ctx.callbacks.emit(
            BindingCallback(
                type="CARD_BINDING",
                transactionId=data["transactionId"],
                referenceNumber=session.reference,
                customerId=data["customerId"] if data["knownCustomer"] else None,
                maskedCard=card["maskedCard"],
                brand=card["brand"],
                expiryMonth=card["expiryMonth"],
                expiryYear=card["expiryYear"],
                status="FAILED",
                responseCode=code,
            ),
            session.reference,
        )
        return BindingResult("FAILED", data["failedRedirectUrl"], code)
    customer_id = data["customerId"] or new_customer_id()
    ctx.ledger.add_customer(customer_id, data["name"], data["email"], data["phoneNumber"], now)
    record = CardRecord(
        card_token=new_card_token(),
        customer_id=customer_id,
        masked_card=card["maskedCard"],
        brand=card["brand"],
        expiry_month=card["expiryMonth"],
        expiry_year=card["expiryYear"],
        outcome=outcome,
        status=CardStatus.ACTIVE,
        reference_number=session.reference,
        created_at=now,
    )
    ctx.ledger.add_card(record)
    code = response_code(200, WEBVIEW, GatewayCode.APPROVED)
    ctx.callbacks.emit(
        BindingCallback(
            type="CARD_BINDING",
            transactionId=data["transactionId"],
            referenceNumber=session.reference,
            customerId=customer_id,
            cardToken=record.card_token,
            maskedCard=record.masked_card,
            brand=record.brand,
            expiryMonth=record.expiry_month,
            expiryYear=record.expiry_year,
            status="ACTIVE",
            responseCode=code,
        ),
        session.reference,
    )
    return BindingResult("ACTIVE", data["redirectUrl"], code)


class CardsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    transactionId: TransactionId
    customerId: CustomerId


def list_cards(ctx: SandboxContext, query: CardsQuery, call: CallInfo) -> Reply:
    if not ctx.ledger.has_customer(query.customerId):
        raise not_found(CARDS_LIST, "unknown customerId")
    cards = [
        Card(
            cardToken=c.card_token,
            maskedCard=c.masked_card,
            brand=c.brand,
            expiryMonth=c.expiry_month,
            expiryYear=c.expiry_year,
            status=c.status,
        )
        for c in ctx.ledger.cards_of(query.customerId)
    ]
    now = ctx.clock.now()
    body = CardsListResponse(
        **envelope(200, CARDS_LIST, GatewayCode.APPROVED, "Success", now, query.transactionId),
        customerId=query.customerId,
        cards=cards,
    )
    return answer(200, body)


def unbind(ctx: SandboxContext, req: UnbindRequest, call: CallInfo) -> Reply:
    card = ctx.ledger.card(req.cardToken)
    if card is None or card.customer_id != req.customerId:
        raise not_found(UNBIND, "no card with this cardToken for this customer")
    if card.status is CardStatus.DISABLED:
        raise rule_violation(UNBIND, "the card token is already unbound")
    now = ctx.clock.now()
    ctx.ledger.set_card_status(card.card_token, CardStatus.DISABLED, now)
    body = UnbindResponse(
        **envelope(200, UNBIND, GatewayCode.APPROVED, "Success", now, req.transactionId),
        cardToken=card.card_token,
        status=CardStatus.DISABLED,
    )
    return answer(200, body)
