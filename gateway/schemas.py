"""Request bodies of the REST API. Answers are Kartu's own models (``workflows.models``,
``starter.client``): one definition, shared by the Python API, the workflows and OpenAPI."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ayoconnect.models import AMOUNT_TEXT_PATTERN as AMOUNT_PATTERN
from ayoconnect.models import CardToken, CustomerId, Url
from workflows.ids import KEY_PATTERN
from workflows.models import CapturePolicy

MerchantKey = Annotated[str, Field(pattern=KEY_PATTERN, examples=["order_20240501_0001"])]
AmountString = Annotated[
    str,
    Field(
        pattern=AMOUNT_PATTERN,
        description="IDR amount as a decimal string, at most two decimals",
        examples=["150000.00"],
    ),
]
Seconds = Annotated[int, Field(gt=0, le=60 * 60 * 24 * 60)]


class Body(BaseModel):
    # Values never appear in validation errors: a card token or encrypted card must not leak.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class PaymentCreate(Body):
    payment_id: MerchantKey | None = Field(
        default=None,
        description="The merchant's payment id (idempotency key). May come from the "
        "Idempotency-Key header instead; if both are given they must be equal.",
    )
    customer_id: CustomerId
    amount: AmountString
    card_token: CardToken | None = Field(default=None, description="Give this or encrypted_card")
    encrypted_card: Annotated[str, Field(min_length=1, max_length=8192)] | None = Field(
        default=None, description="Compact JWE of the card (PCI-DSS merchants only)"
    )
    flow: Literal["direct", "auth_capture"] = "direct"
    redirect_url: Url
    description: Annotated[str, Field(max_length=255)] | None = None
    capture_policy: CapturePolicy = Field(
        default=CapturePolicy.NONE, description="auth_capture only: act before the hold expires"
    )
    capture_policy_margin_seconds: Seconds | None = None
    authorization_window_seconds: Seconds | None = None
    challenge_window_seconds: Seconds | None = None
    confirmation_url: Url | None = None
    deadline: AwareDatetime | None = None
    wait_seconds: Annotated[float, Field(ge=1)] | None = Field(
        default=None,
        description="How long to wait for the first outcome (capped by the gateway); "
        "PENDING is answered when it is not decided by then",
    )

    def payment_fields(self) -> dict[str, Any]:
        """Keyword arguments of ``KartuClient.pay`` / ``authorize`` (payment_id apart)."""
        fields: dict[str, Any] = {
            "customer_id": self.customer_id,
            "amount": self.amount,
            "redirect_url": self.redirect_url,
            "card_token": self.card_token,
            "encrypted_card": self.encrypted_card,
            "description": self.description,
            "confirmation_url": self.confirmation_url,
            "deadline": self.deadline,
            "challenge_window": _seconds(self.challenge_window_seconds),
        }
        if self.flow == "auth_capture":
            fields["capture_policy"] = self.capture_policy
            fields["capture_policy_margin"] = _seconds(self.capture_policy_margin_seconds)
            fields["authorization_window"] = _seconds(self.authorization_window_seconds)
        return fields


class CaptureBody(Body):
    amount: AmountString | None = Field(
        default=None, description="Defaults to the authorized amount; at most 120 % of it"
    )
    requested_by: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class VoidBody(Body):
    reason: Annotated[str, Field(min_length=1, max_length=255)] = "void requested"
    requested_by: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class RefundBody(Body):
    reason: Annotated[str, Field(min_length=1, max_length=255)] = "refund requested"


class RegistrationCreate(Body):
    registration_id: MerchantKey | None = Field(
        default=None,
        description="The merchant's registration id (idempotency key); may come from the "
        "Idempotency-Key header instead",
    )
    customer_id: CustomerId | None = Field(
        default=None, description="Ayoconnect's customer id, to bind another card to them"
    )
    name: Annotated[str, Field(min_length=1, max_length=100)]
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    phone_number: Annotated[str, Field(pattern=r"^62[0-9]{7,13}$", examples=["6281234567890"])]
    redirect_url: Url
    failed_redirect_url: Url | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    temporal: bool


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)
