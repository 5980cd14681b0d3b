"""The documented test cards: the card number decides what the sandbox's issuer does.

Only the outcome class, brand, masked number and expiry of a card are ever stored; the clear
number is looked up here while a request or form is being handled, then forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ayoconnect.codes import GatewayCode

from .clock import JAKARTA

# The one-time password every registration and 3DS page accepts; any other value fails.
TEST_OTP = "123456"


class Outcome(StrEnum):
    APPROVED = "APPROVED"  # frictionless: approved without a challenge
    CHALLENGE = "CHALLENGE"  # 3DS required: approved once the customer passes the OTP page
    DECLINED = "DECLINED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    EXPIRED_CARD = "EXPIRED_CARD"
    INVALID_CSC = "INVALID_CSC"


# Outcomes that refuse a payment, with the gateway code the refusal carries.
DECLINE_CODE: dict[Outcome, GatewayCode] = {
    Outcome.DECLINED: GatewayCode.DECLINED,
    Outcome.INSUFFICIENT_FUNDS: GatewayCode.INSUFFICIENT_FUNDS,
    Outcome.EXPIRED_CARD: GatewayCode.EXPIRED_CARD,
    Outcome.INVALID_CSC: GatewayCode.INVALID_CSC,
}

# Registration refuses these (the card itself is unusable); declining cards still bind, so
# merchants get tokens whose payments decline.
BINDING_FAILURES = frozenset({Outcome.EXPIRED_CARD, Outcome.INVALID_CSC})


@dataclass(frozen=True)
class CardProfile:
    number: str
    brand: str
    outcome: Outcome
    description: str

    @property
    def requires_3ds(self) -> bool:
        return self.outcome is Outcome.CHALLENGE

    @property
    def binds(self) -> bool:
        return self.outcome not in BINDING_FAILURES

    @property
    def decline_code(self) -> GatewayCode | None:
        return DECLINE_CODE.get(self.outcome)

    def as_json(self) -> dict[str, object]:
        decline = self.decline_code
        return {
            "number": self.number,
            "brand": self.brand,
            "outcome": self.outcome.value,
            "requires3ds": self.requires_3ds,
            "binds": self.binds,
            "declineCode": decline.name if decline else None,
            "description": self.description,
        }


TEST_CARDS: tuple[CardProfile, ...] = (
    CardProfile("4111111111111111", "VISA", Outcome.APPROVED, "frictionless success"),
    CardProfile("5555555555554444", "MASTERCARD", Outcome.APPROVED, "frictionless success"),
    CardProfile("4000000000003220", "VISA", Outcome.CHALLENGE, "3DS challenge, then success"),
    CardProfile("4000000000000002", "VISA", Outcome.DECLINED, "binds; payments DECLINED"),
    CardProfile("4000000000009995", "VISA", Outcome.INSUFFICIENT_FUNDS, "binds; payments declined"),
    CardProfile("4000000000000069", "VISA", Outcome.EXPIRED_CARD, "binding and payments fail"),
    CardProfile("4000000000000127", "VISA", Outcome.INVALID_CSC, "binding and payments fail"),
)
_BY_NUMBER = {card.number: card for card in TEST_CARDS}


def luhn_valid(pan: str) -> bool:
    # ASCII digits only: str.isdigit() and int() would accept other scripts' digits.
    if not 12 <= len(pan) <= 19 or not all("0" <= c <= "9" for c in pan):
        return False
    total = 0
    for index, char in enumerate(reversed(pan)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand_of(pan: str) -> str:
    if pan.startswith("4"):
        return "VISA"
    if pan[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(pan[:4] or 0) <= 2720:
        return "MASTERCARD"
    if pan[:2] in {"34", "37"}:
        return "AMEX"
    if pan.startswith("35"):
        return "JCB"
    return "UNKNOWN"


def mask(pan: str) -> str:
    """``411111******1111``: the first six and last four digits, as the contract shows cards."""
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def profile_for(pan: str) -> CardProfile:
    """The table's entry, or frictionless approval for any other Luhn-valid number."""
    known = _BY_NUMBER.get(pan)
    if known is not None:
        return known
    return CardProfile(mask(pan), brand_of(pan), Outcome.APPROVED, "not in the table: approved")


def expiry_passed(month: str, year: str, now: datetime) -> bool:
    """A card is good through the last day of its expiry month (issuer's local time)."""
    full_year = int(year) + 2000 if len(year) == 2 else int(year)
    first_invalid = (
        datetime(full_year + 1, 1, 1, tzinfo=JAKARTA)
        if int(month) == 12
        else datetime(full_year, int(month) + 1, 1, tzinfo=JAKARTA)
    )
    return now >= first_invalid
