"""The reconciliation rule: what differs between a payment's Kartu state and Ayoconnect's record.

Pure functions of one ``Observation`` (both views and when they were taken): no clock, no I/O,
so the reconciliation workflow and the unmatched-callback check apply the same rule, and unit
tests pin it down. A difference is described in words ops can act on; nothing here corrects
anything.

- Kartu still deciding (PENDING, CHALLENGE, PENDING_PROVIDER in a running workflow) is "in
  progress", except a charge the provider already took while Kartu says PENDING_PROVIDER. So is
  a running workflow busy bringing its status in line: a compensation under way, a late-result
  watch, an authorization the provider just voided at its expiry.
- NEEDS_ATTENTION is already with ops: "awaiting ops", not raised again.
- A settled status must match the provider's (``EXPECTED``); amounts must match where both know
  them; a payment Kartu says moved money must be known to the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ayoconnect.models import PaymentDetail
from ayoconnect.models import PaymentStatus as Wire

from .models import PaymentStatus as K
from .provider_time import aware_or_none
from .reconciliation_models import KartuView, Observation, Verdict

# The provider holds money (taken or authorized) in these.
MONEY = frozenset({Wire.SUCCESS, Wire.AUTHORIZED, Wire.CAPTURED})
UNDECIDED_AT_PROVIDER = frozenset({Wire.INITIATED, Wire.AUTHENTICATION_IN_PROGRESS})
# What the provider must say for each settled Kartu status.
EXPECTED: dict[K, frozenset[Wire]] = {
    K.PAID: frozenset({Wire.SUCCESS}),
    K.AUTHORIZED: frozenset({Wire.AUTHORIZED}),
    K.CAPTURED: frozenset({Wire.CAPTURED}),
    K.VOIDED: frozenset({Wire.VOIDED}),
    K.EXPIRED: frozenset({Wire.VOIDED}),  # the provider voids a hold when its window ends
    K.DECLINED: frozenset({Wire.FAILED}),
    K.FAILED: frozenset({Wire.FAILED}),
    K.REFUNDED: frozenset({Wire.REFUNDED}),
}
MOVING = frozenset({K.PENDING, K.CHALLENGE, K.PENDING_PROVIDER})
# Kartu says no money is held: a provider holding some is "a charge Kartu calls X".
NO_MONEY = frozenset({K.FAILED, K.DECLINED, K.EXPIRED, K.VOIDED})
# Kartu says the provider has this payment on its ledger.
ON_LEDGER = frozenset({K.PAID, K.AUTHORIZED, K.CAPTURED, K.REFUNDED, K.VOIDED, K.EXPIRED})
# An authorization the provider voided at its expiry, not yet recorded EXPIRED by the running
# workflow (its expiry timer and void follow): in progress for this long after the expiry.
EXPIRY_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Comparison:
    verdict: Verdict
    differences: tuple[str, ...] = ()
    reason: str | None = None  # why UNKNOWN / IN_PROGRESS / AWAITING_OPS


def compare(observation: Observation) -> Comparison:
    """The verdict on one payment: agree, differ (with every difference), or why neither."""
    kartu = observation.kartu
    if kartu is None:
        why = observation.kartu_error or "Kartu's state could not be read"
        return Comparison(Verdict.UNKNOWN, reason=why)
    if kartu.status is K.NEEDS_ATTENTION:
        return Comparison(Verdict.AWAITING_OPS, reason="already waiting for ops")
    outcome = observation.provider_outcome
    if outcome in ("unavailable", "not_asked"):
        why = observation.provider_error or "the provider was not asked"
        return Comparison(Verdict.UNKNOWN, reason=why)
    provider = observation.provider if outcome == "found" else None
    # Unknown running state counts as running: a payment is never called abandoned on a guess.
    running = observation.ref.running is not False
    if kartu.status in MOVING:
        return _moving(kartu.status, provider, running)
    if provider is None:
        if kartu.status in ON_LEDGER:
            return _differ(f"Kartu says {kartu.status}, the provider does not know the payment")
        return Comparison(Verdict.UNKNOWN, reason="the provider does not know the payment")
    busy = _working_on_it(kartu, provider, running, observation.observed_at)
    if busy:
        return Comparison(Verdict.IN_PROGRESS, reason=busy)
    differences = _status_differences(kartu.status, provider.status)
    differences += amount_differences(kartu, provider)
    if differences:
        return Comparison(Verdict.DIFFER, tuple(differences))
    return Comparison(Verdict.AGREE)


def _differ(*differences: str) -> Comparison:
    return Comparison(Verdict.DIFFER, differences)


def _moving(status: K, provider: PaymentDetail | None, running: bool) -> Comparison:
    wire = provider.status if provider is not None else None
    if running:
        if status is K.PENDING_PROVIDER and wire in MONEY:
            return _differ(f"a charge Kartu calls {status}: the provider says {wire}")
        if status is K.PENDING_PROVIDER and wire in (Wire.REFUNDED, Wire.VOIDED):
            return _differ(f"Kartu says {status}, the provider says {wire}")
        return Comparison(Verdict.IN_PROGRESS, reason=f"Kartu is still deciding ({status})")
    # The workflow closed without a decision (cancelled, terminated, timed out).
    if wire in MONEY:
        return _differ(
            f"a charge Kartu calls {status} (its workflow closed): the provider says {wire}"
        )
    if wire in UNDECIDED_AT_PROVIDER:
        return _differ(
            f"Kartu closed the payment at {status}, the provider has not decided ({wire})"
        )
    if wire in (Wire.REFUNDED, Wire.VOIDED):
        return _differ(f"Kartu closed the payment at {status}, the provider says {wire}")
    if wire is None:
        return Comparison(Verdict.UNKNOWN, reason="the provider does not know the payment")
    return Comparison(Verdict.AGREE)  # closed undecided, and the provider took nothing


def _status_differences(status: K, wire: Wire) -> list[str]:
    if wire in EXPECTED.get(status, frozenset()):
        return []
    said = f"Kartu says {status}, the provider says {wire}"
    if status in (K.PAID, K.CAPTURED) and wire is Wire.REFUNDED:
        return [f"a refund Kartu does not know of: {said}"]
    if status is K.AUTHORIZED and wire is Wire.VOIDED:
        return [f"a void Kartu does not know of: {said}"]
    if status is K.AUTHORIZED and wire is Wire.CAPTURED:
        return [f"a capture Kartu does not know of: {said}"]
    if status in NO_MONEY and wire in MONEY:
        return [f"a charge Kartu calls {status}: the provider says {wire}"]
    if status is K.REFUNDED:
        return [f"{said}: the refund is not at the provider"]
    if status in (K.PAID, K.AUTHORIZED, K.CAPTURED) and wire is Wire.FAILED:
        return [f"{said}: the provider took no money"]
    if status is K.CAPTURED and wire is Wire.AUTHORIZED:
        return [f"{said}: the capture is not at the provider, it still holds the authorization"]
    if wire in UNDECIDED_AT_PROVIDER:
        return [f"{said}: the provider has not decided"]
    return [f"status: {said}"]


def amount_differences(kartu: KartuView, provider: PaymentDetail) -> list[str]:
    """Amounts both sides know and disagree on (Decimal equality: 150000 == 150000.00)."""
    pairs = (
        ("amount", kartu.amount, provider.amount),
        ("authorized amount", kartu.authorized_amount, provider.authorizedAmount),
        ("captured amount", kartu.captured_amount, provider.capturedAmount),
        ("refunded amount", kartu.refunded_amount, provider.refundedAmount),
    )
    return [
        f"{name}: Kartu {mine:.2f}, provider {theirs:.2f}"
        for name, mine, theirs in pairs
        if mine is not None and theirs is not None and mine != theirs
    ]


def _working_on_it(
    kartu: KartuView, provider: PaymentDetail, running: bool, now: datetime
) -> str | None:
    """Why a running workflow will itself bring its settled status in line, if it will."""
    if not running or provider.status in EXPECTED.get(kartu.status, frozenset()):
        return None
    if kartu.pending_compensation:
        return f"Kartu's {kartu.pending_compensation} of this payment is under way"
    watch = kartu.late_result_watch_until
    if watch is not None and now < watch:
        return f"Kartu watches for a late result until {watch.isoformat(timespec='seconds')}"
    return _expiry_in_progress(kartu, provider, now)


def _expiry_in_progress(kartu: KartuView, provider: PaymentDetail, now: datetime) -> str | None:
    """An AUTHORIZED payment the provider voided at its expiry moments ago: the running
    workflow records EXPIRED on its own (its timer, then a void, refused, then a look-up)."""
    if kartu.status is not K.AUTHORIZED or provider.status is not Wire.VOIDED:
        return None
    expiry = kartu.authorization_expires_at or aware_or_none(provider.authorizationExpiresAt)
    if expiry is None or not expiry <= now < expiry + EXPIRY_GRACE:
        return None
    return "the authorization expired at the provider; Kartu records it next"


# --- callbacks ------------------------------------------------------------------------------


def callback_claims_money(status: str) -> bool:
    """A callback saying the provider took or holds money (a hint until the status API says)."""
    return status in {w.value for w in MONEY}


def callback_note(callback_status: str, provider: PaymentDetail | None) -> str | None:
    """What a callback claimed against what the provider's status API says (the truth)."""
    if provider is None or provider.status.value == callback_status:
        return None
    return f"the callback said {callback_status}, the provider's status API says {provider.status}"


# A payment callback's status and the Kartu statuses a closed payment may have ended in that it
# agrees with (later moves included: a paid payment refunded since, a hold captured or voided).
_CALLBACK_AGREES: dict[str, frozenset[K]] = {
    Wire.SUCCESS.value: frozenset({K.PAID, K.REFUNDED}),
    Wire.AUTHORIZED.value: frozenset({K.AUTHORIZED, K.CAPTURED, K.VOIDED, K.EXPIRED, K.REFUNDED}),
    Wire.CAPTURED.value: frozenset({K.CAPTURED, K.REFUNDED}),
    Wire.VOIDED.value: frozenset({K.VOIDED, K.EXPIRED}),
    Wire.REFUNDED.value: frozenset({K.REFUNDED}),
    Wire.FAILED.value: frozenset({K.FAILED, K.DECLINED}),
}


def callback_agrees(callback: object, closed_status: str) -> bool:
    """A payment callback for a payment that closed in a status it agrees with: a late copy of
    what Kartu already knows, nothing to store or check. Anything else (a binding callback, a
    SUCCESS for a payment closed FAILED) is stored and checked against the provider."""
    if getattr(callback, "type", None) != "PAYMENT":
        return False
    status = getattr(callback, "status", None)
    value = getattr(status, "value", status)
    try:
        return K(closed_status) in _CALLBACK_AGREES.get(str(value), frozenset())
    except ValueError:
        return False
