"""``kartu up`` as a supervisor: a part that dies (worker, gateway, sandbox) is started again
with backoff and the restart is said; the parts do not outlive ``kartu up`` itself.

Backoff: 1 s, doubling to 30 s while a part keeps dying; a part that ran for a minute starts
again from 1 s. The dev server is not restarted: it holds the stack's history, and its death is
reported as the stack's end.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# A part that ran this long is healthy again: its next restart waits FIRST_DELAY.
HEALTHY_AFTER = 60.0

_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    """Looked up in the parent: the child between fork and exec only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def die_with_parent() -> None:
    """``preexec_fn`` of every part: when ``kartu up`` dies, even by SIGKILL, the kernel sends
    the part SIGTERM, so no part is left holding the stack's ports (Linux; elsewhere a no-op).
    The signal follows the thread that started the part: parts are started from the event
    loop's thread, which lives as long as ``kartu up``."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Part(Protocol):
    name: str

    @property
    def pid(self) -> int | None: ...

    def exit_code(self) -> int | None: ...

    def died(self) -> str: ...


class Stack(Protocol):
    @property
    def children(self) -> list[Any]: ...

    def start_child(self, name: str) -> None: ...


@dataclass
class _Restarts:
    started_at: float
    delay: float = FIRST_DELAY
    due_at: float | None = None  # set once its death was noticed
    count: int = 0


class Supervisor:
    """Call ``check()`` periodically: dead parts are scheduled and started again."""

    def __init__(
        self,
        stack: Stack,
        say: Callable[..., None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.say = say
        self.clock = clock
        now = clock()
        self.parts = {child.name: _Restarts(started_at=now) for child in stack.children}

    def check(self) -> None:
        now = self.clock()
        for child in self.stack.children:
            if child.exit_code() is None:
                continue
            restarts = self.parts[child.name]
            if restarts.due_at is None:
                if now - restarts.started_at >= HEALTHY_AFTER:
                    restarts.delay = FIRST_DELAY
                restarts.due_at = now + restarts.delay
                self.say(
                    "restarting",
                    f"{child.died()}: restarting it in {restarts.delay:g} s",
                    part=child.name,
                    reason=child.died(),
                    delay_seconds=restarts.delay,
                )
                restarts.delay = min(restarts.delay * 2, MAX_DELAY)
            elif now >= restarts.due_at:
                self.stack.start_child(child.name)
                restarts.due_at = None
                restarts.started_at = now
                restarts.count += 1
                self.say(
                    "restarted",
                    f"{child.name} restarted (pid {child.pid}, restart {restarts.count})",
                    part=child.name,
                    pid=child.pid,
                    restarts=restarts.count,
                )
