"""The chaos run's worker processes, and what a worker's death costs the payments it held
(``bench/chaos.py``, issue 10: "Horizontal" and "Failover time").

- ``WorkerPool``: N worker processes on the chaos task queue: the stack's own ``worker`` plus
  N-1 more started with its command and environment (as ``bench/failover.py`` starts its
  second one). Kills go to them in turn (worker 1, 2, 3, 1, ...); a killed worker is started
  again at once, and each restart is watched until the new process polls the task queue.
- ``failover_figures``: for each kill, the payments in flight at it (started before, ended
  after) against the payments that ran entirely in the quiet period before it (started once
  the previous kill or server restart was over, ended before this kill): their time to end,
  p50 / p99 / max, and the extra delay (in-flight p99 minus quiet p99). Both sets see the same
  fault bursts, so the difference is the kill's.

  Picked alike: a payment is in flight at a given moment in proportion to its length, so the
  payments caught by a kill are the longer ones of the mix (3DS with its customer, capture
  after authorization, a call the sandbox delayed 16 s) even if the kill cost nothing. The
  quiet payments are therefore taken the same way: those in flight at each of the quiet
  period's moments, QUIET_STEP apart (a payment counts once per moment it spans).

  What stays: a quiet period holds no payment longer than itself. A small run's first kill
  comes seconds into the drive, so its quiet payments are the short flows and its "extra
  delay" is mostly the flow mix; the report shows the quiet periods' lengths. In a
  1,000-payment run (a drive of some 360 s, six events) they are some 50 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from starter.stack import Child, LocalStack, StackError

from .figures import percentile

# How long a (re)started worker may take to poll: on two loaded cores a worker's imports and
# its sandbox's first workflow load take seconds, not a minute.
READY_TIMEOUT = 60.0
POLL_EVERY = 0.2
# Seconds between the quiet moments a kill's in-flight payments are compared with: fine
# enough that a payment's weight follows its length.
QUIET_STEP = 0.5
SLOWEST = 5
_POLLED = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


# --- what the report keeps ---------------------------------------------------------------------


@dataclass
class Disruption:
    """A worker kill or a dev-server restart, in seconds since the drive began."""

    kind: str  # "kill" or "restart"
    at_s: float
    # When it was over: the restarted worker seen polling, the restarted server answering.
    # None: never seen (the run fails on it, see ``WorkerFigures.not_back``).
    over_s: float | None = None
    worker: int | None = None  # the worker a kill hit, 1-based
    others_running: int | None = None  # the other worker processes alive at the kill


@dataclass
class WorkerFigures:
    count: int = 1
    events: list[Disruption] = field(default_factory=list)
    # Worker processes that died without being killed: the run would not be the N-worker run
    # it says it is (must be 0).
    unexpected_exits: int = 0
    # Killed workers not seen polling again within READY_TIMEOUT (must be 0).
    not_back: int = 0

    @property
    def kills(self) -> list[Disruption]:
        return [e for e in self.events if e.kind == "kill"]

    def line(self) -> str:
        order = ", ".join(str(e.worker) for e in self.kills) or "none"
        back = [e.over_s - e.at_s for e in self.kills if e.over_s is not None]
        polled = (
            f"; polling again after p50 {percentile(back, 0.5):.1f} s, max {max(back):.1f} s"
            if back
            else ""
        )
        return f"{self.count} (killed in turn: {order}{polled})"


@dataclass(frozen=True)
class Timing:
    """One driven payment, in seconds since the drive began."""

    payment_id: str
    began_s: float
    ended_s: float | None  # None: its driver never finished it (an error, reported as such)
    flow: str = ""
    first_timed_out: bool = False  # its first answer was PENDING (the backend's call timed out)

    @property
    def seconds(self) -> float | None:
        return None if self.ended_s is None else self.ended_s - self.began_s


@dataclass
class Spread:
    n: int = 0
    p50_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None

    @classmethod
    def of(cls, values: Sequence[float], n: int | None = None) -> Spread:
        """``values``' spread; ``n``: how many payments they are (default: one each)."""
        if not values:
            return cls()

        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return cls(
            n=len(values) if n is None else n,
            p50_s=r(percentile(values, 0.5)),
            p99_s=r(percentile(values, 0.99)),
            max_s=r(max(values)),
        )

    def text(self) -> str:
        if not self.n:
            return "none"
        return f"{self.n}, p50 {self.p50_s:.2f} s, p99 {self.p99_s:.2f} s, max {self.max_s:.2f} s"


@dataclass
class KillFailover:
    at_s: float
    worker: int | None
    quiet_from_s: float | None  # the quiet period before the kill: from here to ``at_s``
    in_flight: Spread
    quiet: Spread  # n: payments; percentiles over the quiet moments (see the module's doc)
    unfinished: int  # in flight at the kill, never finished by its driver


@dataclass
class FailoverFigures:
    kills: list[KillFailover] = field(default_factory=list)
    in_flight: Spread = field(default_factory=Spread)  # every kill's, each payment once
    quiet: Spread = field(default_factory=Spread)  # every kill's quiet moments
    unfinished: int = 0
    extra_p99_s: float | None = None  # in-flight p99 minus quiet p99
    # The same at p50: with ~16 payments caught per kill, p99 is the slowest one, which may owe
    # its length to the faults (a capture retried into minutes) rather than the kill.
    extra_p50_s: float | None = None
    # Caught payments whose first answer came back PENDING: a backend's call timed out.
    timed_out: int = 0
    # The longest payments caught by a kill ("id (flow) seconds"): where a p99 comes from.
    slowest: list[str] = field(default_factory=list)

    def periods(self) -> str:
        """How long the quiet periods were: one shorter than the caught payments could not
        hold payments as long as they (a small run's first kill comes seconds in)."""
        spans = [k.at_s - k.quiet_from_s for k in self.kills if k.quiet_from_s is not None]
        return f"quiet periods {min(spans):.1f}-{max(spans):.1f} s" if spans else "no quiet period"


# --- pure logic --------------------------------------------------------------------------------


def victim(kill: int, workers: int) -> int:
    """The worker (0-based) the ``kill``-th kill (0-based) hits: each in turn, never two at once."""
    if workers < 1:
        raise ValueError("at least one worker")
    return kill % workers


def worker_series(text: str) -> list[int]:
    """``"1,2,3"`` → ``[1, 2, 3]``: the worker counts of a series, each at least 1."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"worker counts must be whole numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"worker counts must be at least 1: {text!r}")
    return counts


def moments(start: float, end: float, step: float = QUIET_STEP) -> list[float]:
    """The middles of the ``step``-long slices of [start, end) (none when it is empty)."""
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        return []
    return [start + step * (k + 0.5) for k in range(int((end - start) // step))]


def quiet_durations(timings: Sequence[Timing], start: float, end: float) -> dict[str, list[float]]:
    """The payments that ran entirely in [start, end), each with its duration once per quiet
    moment it was in flight at (its weight, as at a kill, grows with its length)."""
    inside = [
        t for t in timings if t.ended_s is not None and t.began_s >= start and t.ended_s < end
    ]
    picked: dict[str, list[float]] = {}
    for moment in moments(start, end):
        for t in inside:
            if t.ended_s is not None and t.began_s <= moment < t.ended_s:
                picked.setdefault(t.payment_id, []).append(t.ended_s - t.began_s)
    return picked


def failover_figures(timings: Sequence[Timing], events: Sequence[Disruption]) -> FailoverFigures:
    """Per kill: the payments in flight at it against those in flight at the quiet moments
    before it (``quiet_durations``).

    The quiet period before an event begins once the previous event is over (the first one's at
    the drive's start); a previous event never seen over leaves no quiet period after it, rather
    than count payments it slowed as quiet ones. A payment in flight at two kills counts once in
    the run's in-flight figures."""
    figures = FailoverFigures()
    caught_all: dict[str, float] = {}
    timed_out: set[str] = set()
    flows = {t.payment_id: t.flow for t in timings}
    unfinished: set[str] = set()
    quiet_all: dict[str, list[float]] = {}
    quiet_from = 0.0
    for event in sorted(events, key=lambda e: e.at_s):
        if event.kind == "kill":
            caught = [
                t
                for t in timings
                if t.began_s < event.at_s and (t.ended_s is None or t.ended_s >= event.at_s)
            ]
            quiet = quiet_durations(timings, quiet_from, event.at_s)
            durations = {t.payment_id: s for t in caught if (s := t.seconds) is not None}
            lost = {t.payment_id for t in caught if t.ended_s is None}
            figures.kills.append(
                KillFailover(
                    at_s=event.at_s,
                    worker=event.worker,
                    quiet_from_s=quiet_from if math.isfinite(quiet_from) else None,
                    in_flight=Spread.of(list(durations.values())),
                    quiet=Spread.of([s for v in quiet.values() for s in v], n=len(quiet)),
                    unfinished=len(lost),
                )
            )
            caught_all |= durations
            timed_out |= {t.payment_id for t in caught if t.first_timed_out}
            unfinished |= lost
            quiet_all |= quiet
        over = event.over_s if event.over_s is not None else math.inf
        quiet_from = max(quiet_from, over)
    figures.in_flight = Spread.of(list(caught_all.values()))
    longest = sorted(caught_all.items(), key=lambda item: -item[1])[:SLOWEST]
    figures.slowest = [f"{pid} ({flows[pid]}) {seconds:.1f} s" for pid, seconds in longest]
    figures.quiet = Spread.of([s for v in quiet_all.values() for s in v], n=len(quiet_all))
    figures.unfinished = len(unfinished)
    figures.timed_out = len(timed_out)
    if figures.in_flight.p99_s is not None and figures.quiet.p99_s is not None:
        figures.extra_p99_s = round(figures.in_flight.p99_s - figures.quiet.p99_s, 3)
    if figures.in_flight.p50_s is not None and figures.quiet.p50_s is not None:
        figures.extra_p50_s = round(figures.in_flight.p50_s - figures.quiet.p50_s, 3)
    return figures


# --- the processes -----------------------------------------------------------------------------


class WorkerPool:
    """The stack's worker (``worker``, started by ``LocalStack``) and ``count - 1`` more
    (``worker-2`` ...) with its command, environment and a log of their own."""

    def __init__(self, stack: LocalStack, count: int) -> None:
        if count < 1:
            raise ValueError("at least one worker")
        first = stack.child("worker")
        self.stack = stack
        self.workers = [first] + [
            Child(
                f"worker-{i}",
                list(first.command),
                # One metrics port per machine: an operator's port stays the first worker's.
                {**first.env, "KARTU_WORKER_METRICS_PORT": "0"},
                stack.data_dir / f"worker-{i}.log",
            )
            for i in range(2, count + 1)
        ]
        self._watches: list[asyncio.Task[None]] = []
        self._exits_seen: set[int] = set()

    @property
    def count(self) -> int:
        return len(self.workers)

    async def start_others(self, timeout: float = READY_TIMEOUT) -> None:
        """Start the extra workers and wait until each polls: the run begins with N workers.
        Started from the event loop's thread, which lives as long as the run (their
        parent-death signal follows the thread that started them)."""
        for child in self.workers[1:]:
            child.start()
        for child in self.workers[1:]:
            if not await self.wait_polling(child, timeout):
                raise StackError(f"{child.name} not polling after {timeout:g} s: {child.died()}")

    def others_running(self, index: int) -> int:
        return sum(1 for i, c in enumerate(self.workers) if i != index and c.exit_code() is None)

    def kill_and_restart(self, index: int) -> Child:
        """SIGKILL one worker's process group (a power cut) and start it again at once, same
        command, environment and log (what ``LocalStack.kill_child`` / ``start_child`` do)."""
        child = self.workers[index]
        child.kill()
        child.start()
        return child

    def watch(self, child: Child, event: Disruption, origin: float) -> asyncio.Task[None]:
        """Set ``event.over_s`` once ``child`` polls again (seconds since ``origin``)."""

        async def seen() -> None:
            if await self.wait_polling(child, READY_TIMEOUT):
                event.over_s = round(time.monotonic() - origin, 3)

        task = asyncio.create_task(seen())
        self._watches.append(task)
        return task

    async def watched(self, timeout: float = READY_TIMEOUT) -> None:
        """Every watch ended (or cancelled after ``timeout``): what ``over_s`` says is final."""
        pending = [t for t in self._watches if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                task.cancel()
        self.cancel()

    def cancel(self) -> None:
        for task in self._watches:
            task.cancel()
        self._watches.clear()

    async def wait_polling(self, child: Child, timeout: float) -> bool:
        """Until ``child``'s process (its pid in the poller identity, as ``LocalStack`` checks
        the first worker) polls both queue kinds; False if it dies or ``timeout`` passes."""
        pid = child.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pid is None or child.exit_code() is not None or child.pid != pid:
                return False
            # The dev server may be restarting meanwhile: look again.
            with contextlib.suppress(RPCError, TimeoutError):
                if await self._polling(pid):
                    return True
            await asyncio.sleep(POLL_EVERY)
        return False

    async def _polling(self, pid: int) -> bool:
        client = self.stack.client  # replaced when the dev server restarts
        if client is None:
            return False
        for kind in _POLLED:
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.stack.config.namespace,
                    task_queue=TaskQueue(name=self.stack.config.task_queue),
                    task_queue_type=kind,
                ),
                timeout=timedelta(seconds=5),
            )
            if not any(p.identity.startswith(f"{pid}@") for p in described.pollers):
                return False
        return True

    def exited(self) -> list[Child]:
        """Workers whose process is gone though nobody killed it (each process once): a kill
        restarts its worker at once, so any exit seen between kills is the worker's own."""
        gone = []
        for child in self.workers:
            pid = child.pid
            if pid is not None and child.exit_code() is not None and pid not in self._exits_seen:
                self._exits_seen.add(pid)
                gone.append(child)
        return gone

    def terminate_others(self) -> None:
        for child in self.workers[1:]:
            child.terminate()

    def wait_others(self, timeout: float) -> None:
        for child in self.workers[1:]:
            child.wait(timeout)
