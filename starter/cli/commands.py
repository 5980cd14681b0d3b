"""The production commands of ``kartu``: each one call of ``KartuClient``, its answer shown as
JSON (``--json``) or as a document for people (``views``). The connection is the worker's
(``starter.settings.TemporalSettings``: TEMPORAL_PROFILE, TEMPORAL_ADDRESS, ...) with
``--address`` / ``--namespace`` / ``--task-queue`` on top."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starter.output import Text

from . import console, views
from .errors import EXIT_FAILED, CliError, Failure, UsageError
from .reconcile import cmd_reconcile

if TYPE_CHECKING:
    from temporalio.converter import DataConverter

    from starter.client import KartuClient
    from starter.settings import TemporalSettings

CONNECT_TIMEOUT = 10.0


def precheck(args: argparse.Namespace) -> None:
    """What argparse cannot say alone, checked before connecting: nothing starts on bad input."""
    if getattr(args, "redirect_url", "unset") is None:
        raise UsageError(
            "give --redirect-url (where the customer's browser returns) or set KARTU_REDIRECT_URL"
        )
    if getattr(args, "until", None) and args.wait is None:
        raise UsageError("--until needs --wait")
    if args.command == "resolve":
        if args.action == "close" and args.status is None:
            raise UsageError("close needs --status: the status ops established")
        if args.action == "retry" and (args.status or args.force):
            raise UsageError("--status and --force are for close")
        if args.force and not args.note.strip():
            raise UsageError("--force needs --note saying why (it is recorded)")


# --- connecting -------------------------------------------------------------------------------


def temporal_settings(args: argparse.Namespace) -> TemporalSettings:
    """The worker's settings (environment), with the command line's flags on top."""
    from pydantic import ValidationError

    from starter.settings import TemporalSettings

    overrides = {
        alias: getattr(args, name)
        for name, alias in (
            ("address", "TEMPORAL_ADDRESS"),
            ("namespace", "TEMPORAL_NAMESPACE"),
            ("task_queue", "KARTU_TASK_QUEUE"),
        )
        if getattr(args, name, None)
    }
    try:
        return TemporalSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        setting = f"connection setting {where}" if where else "connection setting"
        raise UsageError(f"{setting}: {first['msg']}") from None


async def connect(args: argparse.Namespace) -> KartuClient:
    from starter.client import KartuClient

    settings = temporal_settings(args)
    try:
        settings.tls_config()
    except (OSError, ValueError) as exc:
        raise UsageError(f"TLS settings: {exc}") from None
    converter = payload_converter()
    where = f"{settings.temporal_address} (namespace {settings.temporal_namespace})"
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            return await KartuClient.connect(settings, data_converter=converter)
    except TimeoutError:
        message = f"Temporal at {where} did not answer within {CONNECT_TIMEOUT:g} s"
        raise CliError("unavailable", message, EXIT_FAILED) from None
    except Exception as exc:  # the SDK raises RuntimeError with a long transport story
        message = (
            f"cannot reach Temporal at {where} ({_transport_reason(exc)}): start it "
            "(kartu up) or set --address / TEMPORAL_ADDRESS"
        )
        raise CliError("unavailable", message, EXIT_FAILED) from None


def payload_converter() -> DataConverter:
    """Kartu's data converter, its codec keys read before any connection: missing keys are a
    setting to fix, not an unreachable server."""
    from codec import CodecConfigError
    from starter.connection import kartu_data_converter

    try:
        return kartu_data_converter()
    except CodecConfigError as exc:
        raise UsageError(str(exc)) from None


def _transport_reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "dns error", "timed out", "certificate", "Unauthenticated"):
        if known.lower() in text.lower():
            return known.lower()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:120]


# --- the commands -----------------------------------------------------------------------------


def _show(args: argparse.Namespace, value: Any, doc: Callable[[], views.Doc]) -> None:
    console.show(getattr(args, "json", False), value, doc)


async def cmd_register(args: argparse.Namespace, kartu: KartuClient) -> int:
    started = await kartu.register_card(
        args.registration_id,
        name=args.name,
        email=args.email,
        phone_number=args.phone,
        redirect_url=args.redirect_url,
        customer_id=args.customer,
        failed_redirect_url=args.failed_redirect_url,
    )
    _show(args, started, lambda: views.registration_started(started))
    return 0


async def cmd_registration(args: argparse.Namespace, kartu: KartuClient) -> int:
    if args.wait is not None:
        state = await kartu.wait_registration(args.registration_id, timeout=args.wait)
    else:
        state = await kartu.registration_status(args.registration_id)
    _show(args, state, lambda: views.registration(state))
    return 0


async def cmd_pay(args: argparse.Namespace, kartu: KartuClient) -> int:
    outcome = await kartu.pay(
        args.payment_id,
        customer_id=args.customer,
        amount=args.amount,
        card_token=args.card_token,
        redirect_url=args.redirect_url,
        description=args.description,
        timeout=args.timeout,
    )
    _show(args, outcome, lambda: views.outcome(outcome))
    return 0


async def cmd_authorize(args: argparse.Namespace, kartu: KartuClient) -> int:
    extra: dict[str, Any] = {}
    if args.capture_policy_margin is not None:
        extra["capture_policy_margin"] = args.capture_policy_margin
    if args.authorization_window is not None:
        extra["authorization_window"] = args.authorization_window
    outcome = await kartu.authorize(
        args.payment_id,
        customer_id=args.customer,
        amount=args.amount,
        card_token=args.card_token,
        redirect_url=args.redirect_url,
        description=args.description,
        capture_policy=args.capture_policy,
        timeout=args.timeout,
        **extra,
    )
    _show(args, outcome, lambda: views.outcome(outcome))
    return 0


async def cmd_capture(args: argparse.Namespace, kartu: KartuClient) -> int:
    result = await kartu.capture(
        args.payment_id,
        args.amount,
        requested_by=args.requested_by,
        idempotency_key=args.idempotency_key,
    )
    _show(args, result, lambda: views.action(args.payment_id, result))
    return 0


async def cmd_void(args: argparse.Namespace, kartu: KartuClient) -> int:
    result = await kartu.void(
        args.payment_id,
        args.reason,
        requested_by=args.requested_by,
        idempotency_key=args.idempotency_key,
    )
    _show(args, result, lambda: views.action(args.payment_id, result))
    return 0


async def cmd_refund(args: argparse.Namespace, kartu: KartuClient) -> int:
    state = await kartu.refund(
        args.payment_id, args.reason, wait=not args.no_wait, timeout=args.timeout
    )
    _show(args, state, lambda: views.refund(state))
    if state.status.value == "FAILED":
        why = state.failure or state.error_type or "see the workflow"
        why = why if why.startswith("refund failed") else f"refund failed: {why}"
        # Asking again runs the refund again (it looks the payment up first: never twice).
        raise Failure(f"{why}; `kartu refund {args.payment_id}` asks again")
    return 0


async def cmd_unbind(args: argparse.Namespace, kartu: KartuClient) -> int:
    state = await kartu.unbind_card(
        args.card_token, customer_id=args.customer, timeout=args.timeout
    )
    _show(args, state, lambda: views.unbind(state))
    if state.status.value == "FAILED":
        raise Failure(f"unbind failed: {state.failure or state.error_type or 'see the workflow'}")
    return 0


async def cmd_status(args: argparse.Namespace, kartu: KartuClient) -> int:
    from starter.client import RefundNotFound

    if args.wait is not None:
        state = await kartu.wait_payment(args.payment_id, args.until, timeout=args.wait)
    else:
        state = await kartu.payment_status(args.payment_id)
    provider = None
    if args.provider:
        both = await kartu.provider_status(args.payment_id)
        state, provider = both.kartu, both.provider
    refund = None
    if args.refund:
        try:
            refund = await kartu.refund_status(args.payment_id)
        except RefundNotFound:
            refund = None
    value: Any = state
    if args.refund or args.provider:
        value = {"payment": state}
        if args.refund:
            value["refund"] = refund
        if args.provider:
            value["provider"] = provider
    _show(args, value, lambda: views.payment(state, refund, provider))
    return 0


async def cmd_cards(args: argparse.Namespace, kartu: KartuClient) -> int:
    cards = await kartu.customer_cards(args.customer_id)
    _show(args, cards, lambda: views.cards(cards))
    return 0


async def cmd_resolve(args: argparse.Namespace, kartu: KartuClient) -> int:
    result = await kartu.resolve(
        args.payment_id,
        args.action,
        status=args.status,
        note=args.note,
        resolved_by=args.resolved_by,
        force=args.force,
        refund=args.refund,
        review=args.review,
        idempotency_key=args.idempotency_key,
    )
    if result is not None:
        _show(args, result, lambda: views.action(args.payment_id, result))
        return 0
    target = f"refund-{args.payment_id}" if args.refund else f"payment-{args.payment_id}"
    sent = {"sent": "resolve", "workflow_id": target}
    look = f"kartu status {args.payment_id}" + (" --refund" if args.refund else "")
    text = f"resolve sent to {target}; {look} shows what it did"
    _show(args, sent, lambda: [Text(text)])
    return 0


async def cmd_payments(args: argparse.Namespace, kartu: KartuClient) -> int:
    criteria = {
        "status": args.status,
        "customer_id": args.customer,
        "expiring_before": args.expiring_before,
        "flow": args.flow,
    }
    if args.query:
        shown: dict[str, str] = {"query": kartu.payments_query(**criteria)}
        if args.status == "REFUNDED":
            # Payments the Refund workflow refunded: their own workflow still says PAID.
            shown["refunds_query"] = kartu.refunds_query(customer_id=args.customer)
        _show(args, shown, lambda: [Text("\n".join(shown.values()))])
        return 0
    found = await kartu.find_payments(**criteria, limit=args.limit)
    _show(args, found, lambda: views.payments(found))
    return 0


Handler = Callable[[argparse.Namespace, "KartuClient"], Awaitable[int]]

COMMANDS: dict[str, Handler] = {
    "register": cmd_register,
    "registration": cmd_registration,
    "pay": cmd_pay,
    "authorize": cmd_authorize,
    "capture": cmd_capture,
    "void": cmd_void,
    "refund": cmd_refund,
    "unbind": cmd_unbind,
    "status": cmd_status,
    "cards": cmd_cards,
    "resolve": cmd_resolve,
    "payments": cmd_payments,
    "reconcile": cmd_reconcile,
}
