"""Identifiers Kartu derives from the merchant's keys: pure functions, safe in workflows.

- Workflow ids: ``payment-<paymentId>``, ``registration-<registrationId>``,
  ``refund-<paymentId>``, ``unbind-<card_key(cardToken)>``.
- Ayoconnect ``transactionId`` = ``<key>-<step>`` (at most 32 characters). The same step of
  the same flow always yields the same id, so a retried activity resends the same id and
  Ayoconnect's idempotency returns the first answer.
- One ``X-Correlation-ID`` per flow: ``uuid5(CORRELATION_NAMESPACE, workflow_id).hex``.
- Callbacks are routed back by splitting their ``transactionId`` at its last ``-``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

KEY_MAX_LENGTH = 26
TRANSACTION_ID_MAX_LENGTH = 32
# A merchant's key (payment id, registration id): what the gateway's schemas publish.
KEY_PATTERN = rf"^[A-Za-z0-9_]{{1,{KEY_MAX_LENGTH}}}$"
# \Z, not $: "$" also matches before a final newline, which would slip into a workflow id.
_KEY = re.compile(KEY_PATTERN.removesuffix("$") + r"\Z")

# Fixed forever: changing it would give running flows a second correlation id.
CORRELATION_NAMESPACE = uuid.UUID("6c1f0d1e-8a52-5b8e-9a43-6b61727475aa")

PAYMENT_PREFIX = "payment-"
REGISTRATION_PREFIX = "registration-"
REFUND_PREFIX = "refund-"
UNBIND_PREFIX = "unbind-"


class InvalidKeyError(ValueError):
    """A merchant key (paymentId, registrationId) Kartu cannot use."""


class Step(StrEnum):
    PAY = "pay"
    AUTHORIZE = "auth"
    CAPTURE = "cap"
    VOID = "void"
    REFUND = "rfd"
    REGISTER = "reg"
    UNBIND = "unb"
    COMPENSATION_VOID = "cv"


def validate_key(key: str, what: str = "paymentId") -> str:
    """Return ``key`` if it is 1-26 characters of ``[A-Za-z0-9_]``, else raise InvalidKeyError."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidKeyError(
            f"{what} must be 1 to {KEY_MAX_LENGTH} characters of letters, digits or '_'"
        )
    return key


def payment_workflow_id(payment_id: str) -> str:
    return PAYMENT_PREFIX + validate_key(payment_id, "paymentId")


def registration_workflow_id(registration_id: str) -> str:
    return REGISTRATION_PREFIX + validate_key(registration_id, "registrationId")


def refund_workflow_id(payment_id: str) -> str:
    return REFUND_PREFIX + validate_key(payment_id, "paymentId")


def unbind_workflow_id(card_token: str) -> str:
    """``unbind-<digest of the token>``: deterministic, so asking twice unbinds once.

    Workflow ids are shown in clear in the Temporal UI and lists, outside the payload codec; the
    card token is a credential-like reference, so only its digest goes there (DESIGN: never a
    token in clear metadata).
    """
    if not card_token or not card_token.isalnum() or not card_token.isascii():
        raise InvalidKeyError("cardToken must be letters and digits")
    return UNBIND_PREFIX + card_key(card_token)


def transaction_id(key: str, step: str) -> str:
    """``<key>-<step>``; raises ValueError past Ayoconnect's 32 characters."""
    value = f"{validate_key(key, 'key')}-{step}"
    if len(value) > TRANSACTION_ID_MAX_LENGTH or not step or "-" in step:
        raise ValueError(f"transactionId for step {step!r} would exceed 32 characters")
    return value


# Every refund of a payment (the merchant's, ops', a compensation) is ONE provider request:
# step ``rfd`` (``rfd2``... after a definite "no") with this fixed ``reason``, so two paths asking
# at once send the same transactionId with the same body and the provider refunds once. Why it
# was refunded is kept in Kartu's history, not sent.
REFUND_WIRE_REASON = "Kartu refund"

# A money step answered with a definite "no" is spent (Ayoconnect replays its stored refusal for
# the same transactionId forever): the next try uses ``<step>2`` .. ``<step>9``.
MAX_STEP_ATTEMPTS = 9


def attempt_step(step: str, n: int) -> str:
    """``cap``, ``cap2``, ``cap3``...: the n-th transactionId step of a money action."""
    if not 1 <= n <= MAX_STEP_ATTEMPTS:
        raise ValueError(f"step attempt must be between 1 and {MAX_STEP_ATTEMPTS}")
    return step if n == 1 else f"{step}{n}"


def status_step(n: int) -> str:
    """Status look-up ``s<n>``: n is a per-workflow counter, deterministic on replay."""
    return _counted("s", n)


MAX_REFUND_LOOKUPS = 999


def refund_status_step(attempt: int, n: int) -> str:
    """The Refund workflow's look-ups, ``r<attempt><n>``: apart from the payment workflow's
    ``s<n>`` and from other refund runs', so every request has its own transactionId."""
    if not 1 <= n <= MAX_REFUND_LOOKUPS:
        raise ValueError("refund look-up counter must be between 1 and 999")
    return f"r{attempt}{n}"


def list_step(n: int) -> str:
    """Cards-list look-up ``l<n>``."""
    return _counted("l", n)


# A 26-character key leaves 5 characters for a look-up step: a prefix and up to 4 digits.
MAX_LOOKUPS = 9999


def _counted(prefix: str, n: int) -> str:
    if not 1 <= n <= MAX_LOOKUPS:
        raise ValueError("look-up counter must be between 1 and 9999")
    return f"{prefix}{n}"


def card_key(card_token: str) -> str:
    """A 26-character key for a card token (40 characters do not fit a transactionId).

    A digest, so the token itself never appears in a transactionId or provider log.
    """
    return "u" + hashlib.sha256(card_token.encode()).hexdigest()[: KEY_MAX_LENGTH - 1]


def correlation_id(workflow_id: str) -> str:
    """32 lowercase hex characters, the same for every call of one flow."""
    return uuid.uuid5(CORRELATION_NAMESPACE, workflow_id).hex


def payment_correlation_id(payment_id: str) -> str:
    """The payment flow's correlation id: charge, capture, void, status and refund share it."""
    return correlation_id(payment_workflow_id(payment_id))


@dataclass(frozen=True)
class CallbackRoute:
    """Where the gateway delivers a callback: ``signal`` on workflow ``workflow_id``."""

    key: str
    step: str
    workflow_id: str
    signal: str


class UnroutableCallbackError(ValueError):
    """A callback transactionId that names no Kartu workflow."""


_CALLBACK_ROUTES: dict[str, tuple[str, str]] = {
    Step.REGISTER.value: (REGISTRATION_PREFIX, "binding_callback"),
    Step.PAY.value: (PAYMENT_PREFIX, "payment_callback"),
    Step.AUTHORIZE.value: (PAYMENT_PREFIX, "payment_callback"),
}


def parse_callback_transaction_id(transaction_id: str) -> CallbackRoute:
    """Split at the last ``-``: ``abc_1-reg`` → signal ``binding_callback`` on
    ``registration-abc_1``; ``abc_1-pay`` / ``abc_1-auth`` → ``payment_callback`` on
    ``payment-abc_1``. Anything else raises UnroutableCallbackError."""
    key, sep, step = (transaction_id or "").rpartition("-")
    if not sep or not _KEY.match(key):
        raise UnroutableCallbackError("callback transactionId is not <key>-<step>")
    route = _CALLBACK_ROUTES.get(step)
    if route is None:
        raise UnroutableCallbackError(f"callback step {step!r} is not routed to a workflow")
    prefix, signal = route
    return CallbackRoute(key=key, step=step, workflow_id=prefix + key, signal=signal)
