"""``kartu``: the command line of Kartu for ops and scripts, over ``KartuClient``.

    kartu up                                   # the whole local stack, Ctrl-C stops it
    kartu register reg_1 --name "Budi" --email budi@example.com --phone 6281234567890 \\
        --redirect-url https://shop.example/cards
    kartu sandbox card <webview-url> --card 4111111111111111 --otp 123456
    kartu registration reg_1 --wait            # card token and customer id
    kartu pay order_1 --customer CUST0000000001 --amount 150000 --card-token <token> \\
        --redirect-url https://shop.example/return
    kartu status order_1 --json

Every command takes ``--json`` (machine-readable output on stdout) and the Temporal connection
of the worker: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, KARTU_TASK_QUEUE, TEMPORAL_TLS_CERT /
TEMPORAL_TLS_KEY / TEMPORAL_TLS_CA, TEMPORAL_API_KEY, with ``--address`` / ``--namespace`` /
``--task-queue`` winning. Bad input exits 2 with one line on stderr saying what to fix, before
anything is started; a refusal or failure of the operation exits 1, also in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import output
from .cli_reconcile import add_reconcile_arguments, cmd_reconcile

if TYPE_CHECKING:
    from .client import KartuClient

PROG = "kartu"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8090"
DEFAULT_UI_URL = "http://127.0.0.1:8233"
CONNECT_TIMEOUT = 10.0
_EXIT_USAGE = 2
_EXIT_FAILED = 1


class UsageError(Exception):
    """Bad input found after parsing (exit 2)."""


class Failure(Exception):
    """The operation could not be done (exit 1)."""


# --- argument types: each refuses bad input with the message the user sees -------------------

_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")
_CUSTOMER = re.compile(r"[A-Za-z0-9]{6,16}")
_TOKEN = re.compile(r"[A-Za-z0-9]{40}")
_KEY = re.compile(r"[A-Za-z0-9_]{1,26}")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_STATUS_WORDS = (
    "PENDING CHALLENGE PAID AUTHORIZED CAPTURED VOIDED EXPIRED DECLINED FAILED REFUNDED "
    "NEEDS_ATTENTION PENDING_PROVIDER"
).split()


def amount(text: str) -> Decimal:
    """Rupiah as digits with at most two decimals: ``150000``, ``150000.50``."""
    value = text.strip()
    if not _AMOUNT.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an amount: write rupiah as digits with at most two decimals, "
            "e.g. 150000 or 150000.50 (no exponent, sign or thousands separator)"
        )
    from ayoconnect.models import money

    try:
        return money(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _key(what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not _KEY.fullmatch(text):
            shown = text if len(text) <= 40 and text.isprintable() else text[:40] + "..."
            raise argparse.ArgumentTypeError(
                f"{shown!r} is not a {what}: use 1 to 26 letters, digits or '_'"
            )
        return text

    check.__name__ = what
    return check


payment_id = _key("payment id")
registration_id = _key("registration id")


def customer_id(text: str) -> str:
    if not _CUSTOMER.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a customer id: 6 to 16 letters or digits"
        )
    return text


def card_token(text: str) -> str:
    # The value is not echoed: a card token is a credential.
    if not _TOKEN.fullmatch(text):
        raise argparse.ArgumentTypeError("a card token is exactly 40 letters or digits")
    return text


def url(text: str) -> str:
    if not re.fullmatch(r"https?://\S+", text) or len(text) > 2048:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not an http:// or https:// URL")
    return text


def duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a positive number of seconds, or 30s, 15m, 2h, 7d"
        )
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


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
            f"{text!r} is not a time: give ISO 8601 with a zone (2026-01-31T12:00:00+07:00) "
            "or a duration from now (+24h)"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone: add one, e.g. {value}+07:00 or {value}Z"
        )
    return parsed


def payment_status(text: str) -> str:
    value = text.strip().upper()
    if value not in _STATUS_WORDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a payment status: one of {', '.join(_STATUS_WORDS)}"
        )
    return value


def otp(text: str) -> str:
    if not re.fullmatch(r"[0-9]{4,8}", text):
        raise argparse.ArgumentTypeError("an OTP is 4 to 8 digits")
    return text


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


# --- the parser -------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in ONE line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(_EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common(*, connection: bool) -> argparse.ArgumentParser:
    """Options every command takes, after the command name as well as before it. Defaults are
    SUPPRESS so that a value given before the command is not reset by the command's parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    if connection:
        group = common.add_argument_group("Temporal connection (default: the environment)")
        group.add_argument(
            "--address", default=argparse.SUPPRESS, help="host:port (TEMPORAL_ADDRESS)"
        )
        group.add_argument(
            "--namespace", default=argparse.SUPPRESS, help="namespace (TEMPORAL_NAMESPACE)"
        )
        group.add_argument(
            "--task-queue", default=argparse.SUPPRESS, help="task queue (KARTU_TASK_QUEUE)"
        )
    return common


def _sandbox_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox-url",
        type=url,
        default=os.environ.get("KARTU_SANDBOX_URL", DEFAULT_SANDBOX_URL),
        help="the sandbox's base URL (KARTU_SANDBOX_URL, default %(default)s)",
    )


def _redirect_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redirect-url",
        type=url,
        default=os.environ.get("KARTU_REDIRECT_URL"),
        help="where the customer's browser returns (KARTU_REDIRECT_URL)",
    )


def _payment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("payment_id", metavar="PAYMENT_ID", type=payment_id)
    parser.add_argument("--customer", required=True, type=customer_id, help="customer id")
    parser.add_argument("--amount", required=True, type=amount, help="IDR, e.g. 150000.00")
    parser.add_argument("--card-token", required=True, type=card_token, help="a bound card")
    _redirect_option(parser)
    parser.add_argument("--description", help="shown to the customer (at most 255 characters)")
    parser.add_argument(
        "--timeout", type=seconds, default=30.0, help="wait this long for the first outcome"
    )


def build_parser() -> Parser:
    conn = _common(connection=True)
    plain = _common(connection=False)
    parser = Parser(
        prog=PROG,
        description="Kartu: durable card payments (Ayoconnect on Temporal).",
        parents=[conn],
        epilog="Exit codes: 0 done, 1 refused or failed, 2 bad input.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, *, connected: bool = True) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help, description=help, parents=[conn if connected else plain]
        )

    p = command("register", "start a card registration; prints the webview URL")
    p.add_argument("registration_id", metavar="REGISTRATION_ID", type=registration_id)
    p.add_argument("--name", required=True, help="the customer's name")
    p.add_argument("--email", required=True, help="the customer's e-mail")
    p.add_argument("--phone", required=True, help="the customer's phone, e.g. 6281234567890")
    p.add_argument("--customer", type=customer_id, help="an existing customer's id")
    _redirect_option(p)
    p.add_argument("--failed-redirect-url", type=url, help="where a failed binding returns")

    p = command("registration", "a registration's state (card token once registered)")
    p.add_argument("registration_id", metavar="REGISTRATION_ID", type=registration_id)
    p.add_argument(
        "--wait", type=seconds, nargs="?", const=60.0, metavar="SECONDS", help="until settled"
    )

    p = command("pay", "direct payment (PAY): prints the first outcome")
    _payment_options(p)

    p = command("authorize", "authorization (AUTHORIZE): capture or void it later")
    _payment_options(p)
    p.add_argument(
        "--capture-policy",
        choices=["none", "auto_capture", "auto_void"],
        default="none",
        help="act by itself before the authorization expires",
    )
    p.add_argument("--capture-policy-margin", type=duration, help="how long before expiry")
    p.add_argument(
        "--authorization-window",
        type=duration,
        help="hold at most this long when the provider gives no expiry (default 7d)",
    )

    p = command("capture", "capture an AUTHORIZED payment, all of it or --amount")
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=payment_id)
    p.add_argument("--amount", type=amount, help="up to 120 %% of the authorized amount")
    p.add_argument("--requested-by", help="who asks (recorded in the history)")
    p.add_argument("--idempotency-key", help="a retry with the same key gets the first answer")

    p = command("void", "void an AUTHORIZED payment")
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=payment_id)
    p.add_argument("--reason", default="void requested")
    p.add_argument("--requested-by", help="who asks (recorded in the history)")
    p.add_argument("--idempotency-key", help="a retry with the same key gets the first answer")

    p = command("refund", "refund a PAID or CAPTURED payment in full (once)")
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=payment_id)
    p.add_argument("--reason", default="refund requested")
    p.add_argument("--no-wait", action="store_true", help="return at once, refund carries on")
    p.add_argument("--timeout", type=seconds, default=30.0, help="wait this long for the result")

    p = command("unbind", "disable a card token")
    p.add_argument("card_token", metavar="CARD_TOKEN", type=card_token)
    p.add_argument("--customer", required=True, type=customer_id, help="the card's customer")
    p.add_argument("--timeout", type=seconds, default=30.0, help="wait this long for the result")

    p = command("status", "a payment's state, read from its workflow")
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=payment_id)
    p.add_argument(
        "--wait", type=seconds, nargs="?", const=60.0, metavar="SECONDS", help="until decided"
    )
    p.add_argument(
        "--until", type=payment_status, action="append", help="with --wait: until this status"
    )
    p.add_argument("--refund", action="store_true", help="also show the refund, if any")
    p.add_argument(
        "--provider",
        action="store_true",
        help="also ask Ayoconnect (Get Payment Status) and show its view beside Kartu's",
    )

    p = command(
        "cards", "a customer's cards: Ayoconnect's cards list, with Kartu's registration ids"
    )
    p.add_argument("customer_id", metavar="CUSTOMER_ID", type=customer_id)

    p = command(
        "resolve",
        "answer a NEEDS_ATTENTION payment (or its refund): retry, or close with the status "
        "established by hand",
    )
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=payment_id)
    p.add_argument("action", choices=["retry", "close"])
    p.add_argument("--status", type=payment_status, help="close: e.g. REFUNDED, VOIDED, FAILED")
    p.add_argument("--note", default="", help="what ops established (required with --force)")
    p.add_argument("--by", dest="resolved_by", help="who resolves (recorded in the history)")
    p.add_argument(
        "--force",
        action="store_true",
        help="close even if the provider's status contradicts it (the --note is recorded)",
    )
    p.add_argument("--refund", action="store_true", help="resolve the payment's refund")
    p.add_argument("--idempotency-key", help="a retry with the same key gets the first answer")

    p = command("payments", "search payments (Temporal visibility: eventually consistent)")
    p.add_argument("--status", type=payment_status, help="e.g. AUTHORIZED")
    p.add_argument("--customer", type=customer_id, help="customer id")
    p.add_argument(
        "--expiring-before", type=moment, help="authorization expiry before (ISO time or +24h)"
    )
    p.add_argument("--flow", choices=["DIRECT", "AUTH_CAPTURE"], type=str.upper)
    p.add_argument("--limit", type=int, default=50, help="at most this many (1-1000)")
    p.add_argument("--query", action="store_true", help="print the visibility query only")

    p = command("reconcile", "compare recent payments with Ayoconnect; --schedule: every hour")
    add_reconcile_arguments(p)

    p = command(
        "demo",
        "run every flow end to end against the running stack (with the sandbox's default "
        "7-day authorization window it moves the sandbox clock past an expiry)",
    )
    _sandbox_url_option(p)
    p.add_argument(
        "--ui-url",
        type=url,
        default=os.environ.get("KARTU_UI_URL", DEFAULT_UI_URL),
        help="the Temporal UI, for the links (KARTU_UI_URL, default %(default)s)",
    )
    p.add_argument("--timeout", type=seconds, default=60.0, help="per flow")

    p = command("up", "start the whole local stack; Ctrl-C or SIGTERM stops all of it")
    p.add_argument(
        "--data-dir", type=Path, default=Path(".kartu"), help="state and logs (default .kartu)"
    )
    p.add_argument("--temporal-port", type=port, default=7233, help="frontend (default 7233)")
    p.add_argument("--ui-port", type=port, default=8233, help="Temporal UI (default 8233)")
    p.add_argument("--sandbox-port", type=port, default=8090, help="sandbox (default 8090)")
    p.add_argument("--gateway-port", type=port, default=8080, help="gateway (default 8080)")
    p.add_argument("--ready-timeout", type=seconds, default=60.0, help="give up starting after")
    p.add_argument(
        "--sandbox-auth-window",
        type=duration,
        help="how long the sandbox holds an authorization before voiding it "
        "(default 7d, as Ayoconnect; e.g. 20s to watch expiries)",
    )

    sandbox = command("sandbox", "act as the customer, or move the sandbox", connected=False)
    ssub = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    p = ssub.add_parser("card", help="fill the webview: card form, then OTP", parents=[plain])
    p.add_argument("webview_url", metavar="WEBVIEW_URL", type=url)
    p.add_argument("--card", required=True, help="a test card number, e.g. 4111111111111111")
    p.add_argument("--name", default="KARTU TESTER", help="name on the card")
    p.add_argument("--expiry", help="MM/YY (default: three years ahead)")
    p.add_argument("--cvv", default="123")
    p.add_argument("--otp", type=otp, default="123456", help="123456 passes")
    p = ssub.add_parser("3ds", help="answer a 3DS challenge page", parents=[plain])
    p.add_argument("authentication_url", metavar="URL", type=url)
    p.add_argument("--otp", type=otp, default="123456", help="123456 passes")
    p = ssub.add_parser("advance", help="move the sandbox clock forward", parents=[plain])
    p.add_argument("seconds", metavar="SECONDS", type=seconds, help="e.g. 3600 or 7d")
    _sandbox_url_option(p)
    p = ssub.add_parser("clock", help="the sandbox clock", parents=[plain])
    _sandbox_url_option(p)
    p = ssub.add_parser(
        "ledger", help="the sandbox's payments, cards and callbacks", parents=[plain]
    )
    _sandbox_url_option(p)
    return parser


# --- connecting -------------------------------------------------------------------------------


def temporal_settings(args: argparse.Namespace) -> Any:
    """The worker's settings (environment), with the command line's flags on top."""
    from pydantic import ValidationError

    from .settings import TemporalSettings

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
    from .client import KartuClient

    settings = temporal_settings(args)
    try:
        settings.tls_config()
    except (OSError, ValueError) as exc:
        raise UsageError(f"TLS settings: {exc}") from None
    where = f"{settings.temporal_address} (namespace {settings.temporal_namespace})"
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            return await KartuClient.connect(settings)
    except TimeoutError:
        raise Failure(f"Temporal at {where} did not answer within {CONNECT_TIMEOUT:g} s") from None
    except Exception as exc:  # the SDK raises RuntimeError with a long transport story
        raise Failure(
            f"cannot reach Temporal at {where} ({_transport_reason(exc)}): start it "
            "(kartu up) or set --address / TEMPORAL_ADDRESS"
        ) from None


def _transport_reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "dns error", "timed out", "certificate", "Unauthenticated"):
        if known.lower() in text.lower():
            return known.lower()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:120]


def quiet_sdk_logs() -> None:
    """The SDK's core logs retries (WARN) on stderr; a command reports its own error in one
    line instead."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    quiet = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(logging=quiet)), error_if_already_set=False
    )


# --- commands ---------------------------------------------------------------------------------


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


def _show(args: argparse.Namespace, value: Any, human: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        output.print_json(value)
    else:
        output.emit(human())


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
    _show(args, started, lambda: output.registration_started_text(started))
    return 0


async def cmd_registration(args: argparse.Namespace, kartu: KartuClient) -> int:
    if args.wait is not None:
        state = await kartu.wait_registration(args.registration_id, timeout=args.wait)
    else:
        state = await kartu.registration_status(args.registration_id)
    _show(args, state, lambda: output.registration_text(state))
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
    _show(args, outcome, lambda: output.outcome_text(outcome))
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
    _show(args, outcome, lambda: output.outcome_text(outcome))
    return 0


async def cmd_capture(args: argparse.Namespace, kartu: KartuClient) -> int:
    result = await kartu.capture(
        args.payment_id,
        args.amount,
        requested_by=args.requested_by,
        idempotency_key=args.idempotency_key,
    )
    _show(args, result, lambda: output.action_text(args.payment_id, result))
    return 0


async def cmd_void(args: argparse.Namespace, kartu: KartuClient) -> int:
    result = await kartu.void(
        args.payment_id,
        args.reason,
        requested_by=args.requested_by,
        idempotency_key=args.idempotency_key,
    )
    _show(args, result, lambda: output.action_text(args.payment_id, result))
    return 0


async def cmd_refund(args: argparse.Namespace, kartu: KartuClient) -> int:
    state = await kartu.refund(
        args.payment_id, args.reason, wait=not args.no_wait, timeout=args.timeout
    )
    _show(args, state, lambda: output.refund_text(state))
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
    _show(args, state, lambda: output.unbind_text(state))
    if state.status.value == "FAILED":
        raise Failure(f"unbind failed: {state.failure or state.error_type or 'see the workflow'}")
    return 0


async def cmd_status(args: argparse.Namespace, kartu: KartuClient) -> int:
    from .client import RefundNotFound

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
    _show(args, value, lambda: output.payment_text(state, refund, provider))
    return 0


async def cmd_cards(args: argparse.Namespace, kartu: KartuClient) -> int:
    cards = await kartu.customer_cards(args.customer_id)
    _show(args, cards, lambda: output.cards_table(cards))
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
        idempotency_key=args.idempotency_key,
    )
    if result is not None:
        _show(args, result, lambda: output.action_text(args.payment_id, result))
        return 0
    target = f"refund-{args.payment_id}" if args.refund else f"payment-{args.payment_id}"
    sent = {"sent": "resolve", "workflow_id": target}
    look = f"kartu status {args.payment_id}" + (" --refund" if args.refund else "")
    _show(args, sent, lambda: f"resolve sent to {target}; {look} shows what it did")
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
        _show(args, shown, lambda: "\n".join(shown.values()))
        return 0
    found = await kartu.find_payments(**criteria, limit=args.limit)
    _show(args, found, lambda: output.payments_table(found))
    return 0


async def cmd_demo(args: argparse.Namespace, kartu: KartuClient) -> int:
    from .demo import DemoError, print_results, run_demo

    try:
        results = await run_demo(kartu, sandbox_url=args.sandbox_url, timeout=args.timeout)
    except DemoError as exc:
        raise Failure(str(exc)) from None
    print_results(
        results,
        json_output=getattr(args, "json", False),
        ui_url=args.ui_url,
        namespace=kartu.temporal.namespace,
    )
    return 0 if results and all(r.ok for r in results) else _EXIT_FAILED


async def cmd_sandbox(args: argparse.Namespace) -> int:
    import httpx

    from sandbox.customer import CustomerError

    try:
        return await _sandbox_action(args)
    except CustomerError as exc:
        raise Failure(f"the page did not go as a customer expects: {exc}") from None
    except httpx.HTTPStatusError as exc:
        raise Failure(
            f"the sandbox answered {exc.response.status_code} to {exc.request.url.path}"
        ) from None
    except httpx.HTTPError as exc:
        where = exc.request.url if _has_request(exc) else "the sandbox"
        raise Failure(
            f"cannot reach {where}: {type(exc).__name__} (is `kartu up` running?)"
        ) from None


def _has_request(exc: Exception) -> bool:
    try:
        return exc.request is not None  # type: ignore[attr-defined]
    except RuntimeError:
        return False


async def _sandbox_action(args: argparse.Namespace) -> int:
    from sandbox.control_client import SandboxControl
    from sandbox.customer import authenticate_3ds, register_card

    action = args.sandbox_command
    if action in ("card", "3ds"):
        if action == "card":
            if not re.fullmatch(r"[0-9 -]{12,23}", args.card):
                raise UsageError("--card must be a card number (12 to 19 digits)")
            result = await register_card(
                args.webview_url,
                card_number=args.card,
                cardholder_name=args.name,
                expiry=args.expiry,
                cvv=args.cvv,
                otp=args.otp,
            )
        else:
            result = await authenticate_3ds(args.authentication_url, otp=args.otp)
        value = {"status_code": result.status_code, "redirected_to": result.location}
        _show(args, value, lambda: output.page_text(value))
        return 0
    async with SandboxControl(args.sandbox_url) as control:
        if action == "advance":
            clock = await control.advance_clock(args.seconds)
            _show(args, clock, lambda: output.fields(sorted(clock.items())))
        elif action == "clock":
            clock = await control.clock()
            _show(args, clock, lambda: output.fields(sorted(clock.items())))
        else:
            ledger = await control.ledger()
            _show(args, ledger, lambda: output.ledger_text(ledger))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, KartuClient], Awaitable[int]]] = {
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
    "demo": cmd_demo,
    "reconcile": cmd_reconcile,
}


# --- running ----------------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> int:
    if args.command == "sandbox":
        return await cmd_sandbox(args)
    handler = COMMANDS[args.command]
    precheck(args)
    kartu = await connect(args)
    return await handler(args, kartu)


def _run_up(args: argparse.Namespace) -> int:
    from .stack import StackConfig, serve

    task_queue = getattr(args, "task_queue", None) or os.environ.get("KARTU_TASK_QUEUE", "kartu")
    config = StackConfig(
        data_dir=args.data_dir,
        temporal_port=args.temporal_port,
        ui_port=args.ui_port,
        sandbox_port=args.sandbox_port,
        gateway_port=args.gateway_port,
        namespace=getattr(args, "namespace", None) or "default",
        task_queue=task_queue,
        ready_timeout=args.ready_timeout,
        sandbox_auth_window=args.sandbox_auth_window,
    )
    return asyncio.run(serve(config, json_output=getattr(args, "json", False)))


def _fail(prog: str, message: str, code: int) -> int:
    sys.stderr.write(f"{prog}: error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    return code


def main() -> NoReturn:
    """The console script: run, then leave without interpreter finalization, which the SDK's
    Rust threads can crash at exit (temporalio/sdk-python#300: "PyGILState_Release")."""
    code = run(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(argv: list[str] | None = None) -> int:
    """Parse and run one command; returns the exit code (argparse exits 2 on bad usage)."""
    args = build_parser().parse_args(argv)
    prog = f"{PROG} {args.command}"
    if args.command == "sandbox":
        prog += f" {args.sandbox_command}"
    if args.command == "up":
        if getattr(args, "address", None):
            return _fail(prog, "--address is for a running cluster; use --temporal-port", 2)
        quiet_sdk_logs()
        return _run_up(args)
    quiet_sdk_logs()
    from .client import (
        ActionRefused,
        IdempotencyConflict,
        InvalidRequest,
        KartuError,
        KartuTimeout,
        KartuUnavailable,
        NotFound,
    )

    try:
        return asyncio.run(_run(args))
    except UsageError as exc:
        return _fail(prog, str(exc), _EXIT_USAGE)
    except InvalidRequest as exc:
        return _fail(prog, exc.message, _EXIT_USAGE)
    except ActionRefused as exc:
        return _fail(prog, f"refused: {exc.reason}", _EXIT_FAILED)
    except IdempotencyConflict as exc:
        return _fail(prog, exc.message, _EXIT_FAILED)
    except NotFound as exc:
        return _fail(prog, exc.message, _EXIT_FAILED)
    except KartuTimeout as exc:
        return _fail(prog, f"timed out: {exc.message}", _EXIT_FAILED)
    except KartuUnavailable as exc:
        return _fail(prog, f"Temporal unavailable: {exc.message}", _EXIT_FAILED)
    except (Failure, KartuError) as exc:
        return _fail(prog, str(exc), _EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", 130)
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("KARTU_DEBUG"):
            raise
        return _fail(prog, f"unexpected {type(exc).__name__}: {exc} (KARTU_DEBUG=1 shows where)", 1)


if __name__ == "__main__":
    sys.exit(main())
