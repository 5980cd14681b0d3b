"""Running one ``kartu`` command: parse, connect, call, print; every failure one line on stderr
(or one JSON object with ``--json``) and its exit code (``errors``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import NoReturn

from . import completion
from .commands import COMMANDS, connect, precheck
from .dev import cmd_demo, cmd_sandbox, run_up
from .errors import EXIT_FAILED, CliError, classify, report
from .parser import PROG, build_parser


def main() -> NoReturn:
    """The console script: run, then leave without interpreter finalization, which the SDK's
    Rust threads can crash at exit (temporalio/sdk-python#300: "PyGILState_Release")."""
    code = run(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def asks_json(argv: list[str]) -> bool:
    """``--json`` among the options (not after ``--``): errors are then JSON too, parse errors
    included."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def run(argv: list[str] | None = None) -> int:
    """Parse and run one command; returns the exit code (argparse exits 2 on bad usage)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(json_errors=asks_json(argv)).parse_args(argv)
    json_output = getattr(args, "json", False)
    prog = f"{PROG} {args.command}"
    if args.command == "sandbox":
        prog += f" {args.sandbox_command}"
    if args.command == "completion":
        sys.stdout.write(completion.script(args.shell, build_parser()))
        return 0
    if args.command == "up":
        if getattr(args, "address", None):
            usage = CliError("usage", "--address is for a running cluster; use --temporal-port", 2)
            return report(prog, usage, json_output=json_output)
        quiet_sdk_logs()
        return run_up(args)
    if args.command != "sandbox":  # HTTP to the sandbox: no Temporal runtime to load
        quiet_sdk_logs()
    try:
        return asyncio.run(_run(args))
    except (Exception, KeyboardInterrupt) as exc:
        error = classify(exc)
        if error is None:  # a bug, not bad input: one line, the traceback on request
            if os.environ.get("KARTU_DEBUG"):
                raise
            error = CliError(
                "internal",
                f"unexpected {type(exc).__name__}: {exc} (KARTU_DEBUG=1 shows where)",
                EXIT_FAILED,
            )
        return report(prog, error, json_output=json_output)


async def _run(args: argparse.Namespace) -> int:
    if args.command == "sandbox":
        return await cmd_sandbox(args)
    handler = cmd_demo if args.command == "demo" else COMMANDS[args.command]
    precheck(args)
    kartu = await connect(args)
    return await handler(args, kartu)


def quiet_sdk_logs() -> None:
    """The SDK's core logs retries (WARN) on stderr; a command reports its own error in one
    line instead."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    quiet = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(logging=quiet)), error_if_already_set=False
    )
