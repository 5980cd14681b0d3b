"""What every suite that needs a real stack shares: free loopback ports that two test processes
never both hand out, a clean environment for the stack's parts, and ``running_stack``, the
product's own ``LocalStack`` (what ``kartu up`` runs) started on them.

Ports: pytest-xdist runs several test processes at once, each starting stacks whose parts bind
ports chosen before they start. The kernel's ``bind(0)`` could hand a port just chosen by one
process to another one (or to a client's outgoing connection) before the part binds it. So each
process takes its ports from a band of its own, below the kernel's ephemeral range (32768+):
no other worker of the run, and no ``bind(0)``, ever uses them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starter.stack import LocalStack, StackConfig, StackError

ROOT = Path(__file__).resolve().parents[1]
# What the developer's shell may hold for another cluster or another stack: never inherited.
SCRUBBED_PREFIXES = ("TEMPORAL_", "KARTU_", "AYOCONNECT_", "SANDBOX_")
_BAND_START = 20000
_BAND_SIZE = 600  # ports per test process: a session starts a handful of stacks at most
_handed_out: set[int] = set()
_started: list[LocalStack] = []


def worker_number() -> int:
    """0 for a run without xdist, n + 1 for xdist's worker ``gw<n>``."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) + 1 if name.startswith("gw") and name[2:].isdigit() else 0


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port of this test process's band, never handed out twice by it."""
    start = _BAND_START + (worker_number() % 20) * _BAND_SIZE
    # A random starting point: two sessions run side by side (two developers' runs on one
    # machine) rarely pick the same ports, and a port one of them holds is skipped.
    offset = random.randrange(_BAND_SIZE)
    for step in range(_BAND_SIZE):
        port = start + (offset + step) % _BAND_SIZE
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port left in {start}-{start + _BAND_SIZE - 1}")


def free_ports(count: int) -> list[int]:
    return [free_port() for _ in range(count)]


# The parts' Prometheus endpoints are on fixed ports by default (9464, 9465): off in a test's
# stack, where two stacks side by side would fight over them (the telemetry suite sets its own).
NO_METRICS = {"KARTU_WORKER_METRICS_PORT": "0", "KARTU_GATEWAY_METRICS_PORT": "0"}


def stack_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any Temporal, Kartu, Ayoconnect or sandbox setting,
    with this tree importable (as the tests import it), no metrics endpoints, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(NO_METRICS)
    env.update(extra)
    return env


def stack_config(data_dir: Path, **overrides: Any) -> StackConfig:
    """A headless stack on ports of this process's band, generous timeouts for a loaded CI."""
    temporal, sandbox, gateway = free_ports(3)
    options: dict[str, Any] = {
        "data_dir": data_dir,
        "temporal_port": temporal,
        "sandbox_port": sandbox,
        "gateway_port": gateway,
        "ui_port": 0,
        "headless": True,
        "ready_timeout": 90.0,
        "stop_timeout": 20.0,
    }
    options.update(overrides)
    if not options["headless"] and not options["ui_port"]:
        options["ui_port"] = free_port()
    return StackConfig(**options)


def track(stack: LocalStack) -> LocalStack:
    """Stop ``stack`` when this process exits, whatever happened: a test process that dies
    without its fixtures' teardown (an xdist worker's internal error) leaves no stack behind."""
    _started.append(stack)
    return stack


@atexit.register
def _stop_tracked() -> None:
    for stack in reversed(_started):
        with contextlib.suppress(Exception):
            stack.stop()  # idempotent: a stopped stack's parts are gone already


def log_tails(stack: LocalStack, lines: int = 25) -> str:
    """The last lines of every part's log: what a failed test prints."""
    parts = []
    for path in sorted(stack.data_dir.glob("*.log")):
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        parts.append(f"--- {path.name}\n" + "\n".join(text))
    return "\n".join(parts)


@contextlib.asynccontextmanager
async def running_stack(
    data_dir: Path, environ: dict[str, str] | None = None, **overrides: Any
) -> AsyncIterator[LocalStack]:
    """``LocalStack`` started in ``data_dir`` (config: ``stack_config`` with ``overrides``;
    environment: ``stack_environ()`` unless given), stopped on exit whatever happened."""
    stack = track(LocalStack(stack_config(data_dir, **overrides), environ or stack_environ()))
    try:
        try:
            await stack.start()
        except StackError as exc:
            raise RuntimeError(f"the stack did not start: {exc}\n{log_tails(stack)}") from None
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)
