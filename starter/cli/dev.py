"""The local-development commands of ``kartu``, apart from the production ones:

- ``kartu up``: the whole local stack (``starter.stack``);
- ``kartu demo``: every flow end to end against it (``starter.demo``);
- ``kartu sandbox card|3ds|advance|clock|ledger``: play the customer on the sandbox's pages, move
  or read its clock and ledger (``sandbox.customer``, ``sandbox.control_client``).

Their parsers are built here with the others; their code (the stack, the demo, the sandbox
package) is imported only when one of them runs, so a production command never loads the
sandbox (``tests/cli/test_cli_imports.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import args as t
from . import console, views
from .errors import EXIT_FAILED, Failure, UsageError

if TYPE_CHECKING:
    from starter.client import KartuClient

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8090"
DEFAULT_UI_URL = "http://127.0.0.1:8233"


def _sandbox_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox-url",
        type=t.url,
        default=os.environ.get("KARTU_SANDBOX_URL", DEFAULT_SANDBOX_URL),
        help="the sandbox's base URL (KARTU_SANDBOX_URL, default %(default)s)",
    )


def add_dev_commands(
    command: Callable[..., argparse.ArgumentParser],
    plain: argparse.ArgumentParser,
    parser_class: Callable[..., argparse.ArgumentParser],
) -> None:
    p = command(
        "demo",
        "run every flow end to end against the running stack (with the sandbox's default "
        "7-day authorization window it moves the sandbox clock past an expiry)",
    )
    _sandbox_url_option(p)
    p.add_argument(
        "--ui-url",
        type=t.url,
        default=os.environ.get("KARTU_UI_URL", DEFAULT_UI_URL),
        help="the Temporal UI, for the links (KARTU_UI_URL, default %(default)s)",
    )
    p.add_argument("--timeout", type=t.seconds, default=60.0, help="per flow")

    p = command("up", "start the whole local stack; Ctrl-C or SIGTERM stops all of it")
    p.add_argument(
        "--data-dir", type=Path, default=Path(".kartu"), help="state and logs (default .kartu)"
    )
    p.add_argument("--temporal-port", type=t.port, default=7233, help="frontend (default 7233)")
    p.add_argument("--ui-port", type=t.port, default=8233, help="Temporal UI (default 8233)")
    p.add_argument("--sandbox-port", type=t.port, default=8090, help="sandbox (default 8090)")
    p.add_argument("--gateway-port", type=t.port, default=8080, help="gateway (default 8080)")
    p.add_argument(
        "--worker-metrics-port", type=t.port, default=9464, help="worker /metrics (default 9464)"
    )
    p.add_argument(
        "--gateway-metrics-port", type=t.port, default=9465, help="gateway /metrics (default 9465)"
    )
    p.add_argument("--ready-timeout", type=t.seconds, default=60.0, help="give up starting after")
    p.add_argument(
        "--sandbox-auth-window",
        type=t.duration,
        help="how long the sandbox holds an authorization before voiding it "
        "(default 7d, as Ayoconnect; e.g. 20s to watch expiries)",
    )

    sandbox = command("sandbox", "act as the customer, or move the sandbox", connected=False)
    ssub = sandbox.add_subparsers(
        dest="sandbox_command", metavar="ACTION", required=True, parser_class=parser_class
    )
    p = ssub.add_parser("card", help="fill the webview: card form, then OTP", parents=[plain])
    p.add_argument("webview_url", metavar="WEBVIEW_URL", type=t.url)
    p.add_argument("--card", required=True, help="a test card number, e.g. 4111111111111111")
    p.add_argument("--name", default="KARTU TESTER", help="name on the card")
    p.add_argument("--expiry", help="MM/YY (default: three years ahead)")
    p.add_argument("--cvv", default="123")
    p.add_argument("--otp", type=t.otp, default="123456", help="123456 passes")
    p = ssub.add_parser("3ds", help="answer a 3DS challenge page", parents=[plain])
    p.add_argument("authentication_url", metavar="URL", type=t.url)
    p.add_argument("--otp", type=t.otp, default="123456", help="123456 passes")
    p = ssub.add_parser("advance", help="move the sandbox clock forward", parents=[plain])
    p.add_argument("seconds", metavar="SECONDS", type=t.seconds, help="e.g. 3600 or 7d")
    _sandbox_url_option(p)
    p = ssub.add_parser("clock", help="the sandbox clock", parents=[plain])
    _sandbox_url_option(p)
    p = ssub.add_parser(
        "ledger", help="the sandbox's payments, cards and callbacks", parents=[plain]
    )
    _sandbox_url_option(p)


# --- kartu up ---------------------------------------------------------------------------------


def run_up(args: argparse.Namespace) -> int:
    from starter.stack import StackConfig, serve

    task_queue = getattr(args, "task_queue", None) or os.environ.get("KARTU_TASK_QUEUE", "kartu")
    config = StackConfig(
        data_dir=args.data_dir,
        temporal_port=args.temporal_port,
        ui_port=args.ui_port,
        sandbox_port=args.sandbox_port,
        gateway_port=args.gateway_port,
        worker_metrics_port=args.worker_metrics_port,
        gateway_metrics_port=args.gateway_metrics_port,
        namespace=getattr(args, "namespace", None) or "default",
        task_queue=task_queue,
        ready_timeout=args.ready_timeout,
        sandbox_auth_window=args.sandbox_auth_window,
    )
    return asyncio.run(serve(config, json_output=getattr(args, "json", False)))


# --- kartu demo -------------------------------------------------------------------------------


async def cmd_demo(args: argparse.Namespace, kartu: KartuClient) -> int:
    from starter.demo import FLOWS, DemoError, print_results, run_demo

    json_output = getattr(args, "json", False)
    # Progress on stderr: live on a terminal; piped, a line per flow unless --json (a script
    # reading both streams gets only the report).
    with console.progress(len(FLOWS), plain_lines=not json_output) as steps:
        try:
            results = await run_demo(
                kartu,
                sandbox_url=args.sandbox_url,
                timeout=args.timeout,
                on_start=steps.started,
                on_end=lambda r: steps.finished(r.flow, r.line(), r.ok),
            )
        except DemoError as exc:
            raise Failure(str(exc)) from None
    print_results(
        results, json_output=json_output, ui_url=args.ui_url, namespace=kartu.temporal.namespace
    )
    return 0 if results and all(r.ok for r in results) else EXIT_FAILED


# --- kartu sandbox ----------------------------------------------------------------------------


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

    json_output = getattr(args, "json", False)
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
        console.show(json_output, value, lambda: views.page(value))
        return 0
    async with SandboxControl(args.sandbox_url) as control:
        answer: dict[str, Any]
        if action == "advance":
            answer = await control.advance_clock(args.seconds)
        elif action == "clock":
            answer = await control.clock()
        else:
            ledger = await control.ledger()
            console.show(json_output, ledger, lambda: views.ledger(ledger))
            return 0
        console.show(json_output, answer, lambda: views.mapping(answer))
    return 0
