"""The ``kartu`` parser: every command, its options and their types (``args``). The production
commands are here; the local-development ones (``up``, ``demo``, ``sandbox``) come from ``dev``
and ``reconcile`` from ``reconcile``. Building it imports no client, stack or sandbox code."""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Callable
from typing import Any, NoReturn

from . import args as t
from .dev import add_dev_commands
from .errors import EXIT_USAGE
from .reconcile import add_reconcile_arguments

PROG = "kartu"


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in ONE line (no usage dump) and exits 2; as one
    JSON object on stdout when the command line asked for ``--json``."""

    def __init__(self, *a: Any, json_errors: bool = False, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.json_errors = json_errors

    def error(self, message: str) -> NoReturn:
        message = f"{message} (see {self.prog} --help)"
        if self.json_errors:
            body = {"type": "usage", "message": message, "exit_code": EXIT_USAGE}
            print(json.dumps({"error": body}, ensure_ascii=False), flush=True)
            self.exit(EXIT_USAGE)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _common(*, connection: bool) -> argparse.ArgumentParser:
    """Options every command takes, after the command name as well as before it. Defaults are
    SUPPRESS so that a value given before the command is not reset by the command's parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help='print JSON for scripts (errors too: one {"error": ...} object)',
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


def _redirect_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redirect-url",
        type=t.url,
        default=os.environ.get("KARTU_REDIRECT_URL"),
        help="where the customer's browser returns (KARTU_REDIRECT_URL)",
    )


def _payment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("payment_id", metavar="PAYMENT_ID", type=t.payment_id)
    parser.add_argument("--customer", required=True, type=t.customer_id, help="customer id")
    parser.add_argument("--amount", required=True, type=t.amount, help="IDR, e.g. 150000.00")
    parser.add_argument("--card-token", required=True, type=t.card_token, help="a bound card")
    _redirect_option(parser)
    parser.add_argument("--description", help="shown to the customer (at most 255 characters)")
    parser.add_argument(
        "--timeout", type=t.seconds, default=30.0, help="wait this long for the first outcome"
    )


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requested-by", help="who asks (recorded in the history)")
    parser.add_argument("--idempotency-key", help="a retry with the same key gets the first answer")


def build_parser(*, json_errors: bool = False) -> Parser:
    conn = _common(connection=True)
    plain = _common(connection=False)
    parser_class = functools.partial(Parser, json_errors=json_errors)
    parser = parser_class(
        prog=PROG,
        description="Kartu: durable card payments (Ayoconnect on Temporal).",
        parents=[conn],
        epilog="Exit codes: 0 done, 1 refused or failed, 2 bad input.",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=parser_class
    )

    def command(name: str, help: str, *, connected: bool = True) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help, description=help, parents=[conn if connected else plain]
        )

    _production_commands(command)
    add_dev_commands(command, plain, parser_class)
    p = command("completion", "print a shell completion script", connected=False)
    p.add_argument(
        "shell",
        choices=["bash", "zsh"],
        help="bash: source <(kartu completion bash); zsh: source <(kartu completion zsh)",
    )
    return parser


Command = Callable[..., argparse.ArgumentParser]


def _production_commands(command: Command) -> None:
    p = command("register", "start a card registration; prints the webview URL")
    p.add_argument("registration_id", metavar="REGISTRATION_ID", type=t.registration_id)
    p.add_argument("--name", required=True, help="the customer's name")
    p.add_argument("--email", required=True, help="the customer's e-mail")
    p.add_argument("--phone", required=True, help="the customer's phone, e.g. 6281234567890")
    p.add_argument("--customer", type=t.customer_id, help="an existing customer's id")
    _redirect_option(p)
    p.add_argument("--failed-redirect-url", type=t.url, help="where a failed binding returns")

    p = command("registration", "a registration's state (card token once registered)")
    p.add_argument("registration_id", metavar="REGISTRATION_ID", type=t.registration_id)
    p.add_argument(
        "--wait", type=t.seconds, nargs="?", const=60.0, metavar="SECONDS", help="until settled"
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
    p.add_argument("--capture-policy-margin", type=t.duration, help="how long before expiry")
    p.add_argument(
        "--authorization-window",
        type=t.duration,
        help="hold at most this long when the provider gives no expiry (default 7d)",
    )

    p = command("capture", "capture an AUTHORIZED payment, all of it or --amount")
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=t.payment_id)
    p.add_argument("--amount", type=t.amount, help="up to 120 %% of the authorized amount")
    _key_options(p)

    p = command("void", "void an AUTHORIZED payment")
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=t.payment_id)
    p.add_argument("--reason", default="void requested")
    _key_options(p)

    p = command("refund", "refund a PAID or CAPTURED payment in full (once)")
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=t.payment_id)
    p.add_argument("--reason", default="refund requested")
    p.add_argument("--no-wait", action="store_true", help="return at once, refund carries on")
    p.add_argument("--timeout", type=t.seconds, default=30.0, help="wait this long for the result")

    p = command("unbind", "disable a card token")
    p.add_argument("card_token", metavar="CARD_TOKEN", type=t.card_token)
    p.add_argument("--customer", required=True, type=t.customer_id, help="the card's customer")
    p.add_argument("--timeout", type=t.seconds, default=30.0, help="wait this long for the result")

    p = command("status", "a payment's state, read from its workflow")
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=t.payment_id)
    p.add_argument(
        "--wait", type=t.seconds, nargs="?", const=60.0, metavar="SECONDS", help="until decided"
    )
    p.add_argument(
        "--until", type=t.payment_status, action="append", help="with --wait: until this status"
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
    p.add_argument("customer_id", metavar="CUSTOMER_ID", type=t.customer_id)

    p = command(
        "resolve",
        "answer a NEEDS_ATTENTION payment (or its refund): retry, or close with the status "
        "established by hand",
    )
    p.add_argument("payment_id", metavar="PAYMENT_ID", type=t.payment_id)
    p.add_argument("action", choices=["retry", "close"])
    p.add_argument("--status", type=t.payment_status, help="close: e.g. REFUNDED, VOIDED, FAILED")
    p.add_argument("--note", default="", help="what ops established (required with --force)")
    p.add_argument("--by", dest="resolved_by", help="who resolves (recorded in the history)")
    p.add_argument(
        "--force",
        action="store_true",
        help="close even if the provider's status contradicts it (the --note is recorded)",
    )
    p.add_argument("--refund", action="store_true", help="resolve the payment's refund")
    p.add_argument(
        "--review",
        action="store_true",
        help="close the payment's reconciliation review (review-<id>)",
    )
    p.add_argument("--idempotency-key", help="a retry with the same key gets the first answer")

    p = command("payments", "search payments (Temporal visibility: eventually consistent)")
    p.add_argument("--status", type=t.payment_status, help="e.g. AUTHORIZED")
    p.add_argument("--customer", type=t.customer_id, help="customer id")
    p.add_argument(
        "--expiring-before", type=t.moment, help="authorization expiry before (ISO time or +24h)"
    )
    p.add_argument("--flow", choices=["DIRECT", "AUTH_CAPTURE"], type=str.upper)
    p.add_argument("--limit", type=int, default=50, help="at most this many (1-1000)")
    p.add_argument("--query", action="store_true", help="print the visibility query only")

    p = command("reconcile", "compare recent payments with Ayoconnect; --schedule: every hour")
    add_reconcile_arguments(p)
