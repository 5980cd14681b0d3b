"""Parked authorizations at scale: N held at once, each expiring or captured, on one worker.

Starts N auth-capture payments (frictionless test card) at a steady rate with bounded
concurrency, on a stack whose sandbox (the provider) holds an authorization for a short window;
Kartu's hold timer follows the provider's ``authorizationExpiresAt``. A chosen fraction is
captured at a random moment before its window ends, the rest must expire: Kartu's timer fires,
the hold is voided at the provider (a refused void is looked up: found voided), EXPIRED.

Then it reports the worker's peak RSS (``/proc/<pid>/status``: the highest VmRSS sampled and
the kernel's VmHWM), the history size of every payment (events, and bytes as stored, i.e. the
serialized events with codec-encrypted payloads), how late each expiry was after its deadline
(p50, p99, max; three readings from each payment's history, see ``bench/parked_report.py``: the
timer firing, Kartu's worker acting on it, the EXPIRED transition; the target is judged on the
worker acting, the moment the expiry is Kartu's and not only Temporal's), and whether every
payment ended right: Kartu EXPIRED with the sandbox's ledger VOIDED, or CAPTURED on both, one
ledger payment each. Targets: worker RSS < 500 MB, expiry p99 < 1 s, 0 wrong. The figures go to
``bench/results/parked-<n>-<time>.json`` with the date and the machine.

One command, its own stack (``starter.stack.LocalStack``, what ``kartu up`` runs, on free
ports in a temporary directory, headless)::

    .venv/bin/python -m bench.parked                              # 10,000, 25/s, 900 s window
    .venv/bin/python -m bench.parked -n 200 --rate 5 --window 60  # a small run, ~2 min

Or against a running stack, whose sandbox window decides the deadlines::

    kartu up --sandbox-auth-window 900s                       # in another terminal
    .venv/bin/python -m bench.parked --stack running -n 2000 --rate 20

(the worker's pid is found among the task queue's pollers on this machine, or ``--worker-pid``;
the sandbox's URL is ``--sandbox``). To hold all N at once the window must outlast the starts
(N / the rate reached; the stack, not ``--rate``, may set the pace): the report says how many
were held at once. The expiries come at the rate the starts did, each with a void and, when
the provider's own expiry came first, a status look-up, so ``--rate`` also sets how hard the
expiry phase is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from sandbox.control_client import SandboxControl
from starter.client import ActionRefused, KartuClient, KartuTimeout, KartuUnavailable
from workflows.ids import payment_workflow_id
from workflows.models import UNDECIDED, PaymentState, PaymentStatus
from workflows.provider_time import aware

from .figures import machine
from .parked_report import (
    CLOSED,
    Parked,
    RssPeak,
    RunFacts,
    activity_names,
    apply_ledger,
    apply_state,
    expiry_timing,
    lines,
    parse_proc_status,
    summarize,
)
from .payments import RESULTS, bound_card
from .stacks import bench_stack

T = TypeVar("T")
AMOUNT = "150000"
RETRYABLE = (KartuTimeout, KartuUnavailable, RPCError, TimeoutError)
ATTEMPTS = 3


# --- the worker's memory ----------------------------------------------------------------------


class RssWatch:
    """Samples ``/proc/<pid>/status`` of the watched processes every ``interval`` seconds."""

    def __init__(self, pids: list[tuple[str, int]], interval: float) -> None:
        self.peaks = [RssPeak(part, pid) for part, pid in pids]
        self.interval = interval
        self.timeline: list[tuple[float, float]] = []
        self._began = time.monotonic()

    def sample(self) -> None:
        for peak in self.peaks:
            if peak.gone:
                continue
            try:
                text = Path(f"/proc/{peak.pid}/status").read_text()
            except OSError:  # the process ended (a worker that died): its peak so far stays
                peak.gone = True
                continue
            peak.see(parse_proc_status(text))

    def worker_mb(self) -> float:
        return round(sum(p.last_kb for p in self.peaks if p.part == "worker") / 1024, 1)

    async def run(self, mark_every: float = 10.0) -> None:
        next_mark = 0.0
        while True:
            self.sample()
            elapsed = time.monotonic() - self._began
            if elapsed >= next_mark:
                self.timeline.append((round(elapsed, 1), self.worker_mb()))
                next_mark += mark_every
            await asyncio.sleep(self.interval)


async def worker_pids_on_queue(client: Client, task_queue: str) -> list[int]:
    """Pids of this machine's workers polling ``task_queue`` (an SDK worker's identity is
    ``<pid>@<host>``)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    host = socket.gethostname()
    found = (local_pid(poller.identity, host) for poller in described.pollers)
    return sorted({pid for pid in found if pid is not None})


def local_pid(identity: str, host: str) -> int | None:
    """The pid in a poller identity ``<pid>@<host>`` when it is a live process of ``host``."""
    pid, _, where = identity.partition("@")
    if where == host and pid.isdigit() and Path(f"/proc/{pid}").exists():
        return int(pid)
    return None


# --- driving ----------------------------------------------------------------------------------


def make_plan(n: int, capture_fraction: float, seed: int, run: str) -> list[Parked]:
    """N payments; ``round(n * capture_fraction)`` of them, chosen by ``seed``, to capture."""
    rng = random.Random(seed)
    chosen = set(rng.sample(range(n), round(n * capture_fraction)))
    return [
        Parked(f"pk_{run}_{i}", capture=i in chosen, capture_point=rng.random()) for i in range(n)
    ]


class Driver:
    """Authorizes the plan's payments and captures the chosen ones at their moment."""

    def __init__(
        self,
        kartu: KartuClient,
        card_token: str,
        customer_id: str,
        *,
        capture_margin: timedelta,
        concurrency: int,
    ) -> None:
        self.kartu = kartu
        self.card_token = card_token
        self.customer_id = customer_id
        self.capture_margin = capture_margin
        self.capture_gate = asyncio.Semaphore(concurrency)
        self.captures: list[asyncio.Task[None]] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.last_authorized = datetime.now(UTC)

    async def _retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """``call`` again after a transient failure: a payment id and a capture's idempotency
        key make a second ask the same ask."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await call()
            except RETRYABLE:
                if attempt == ATTEMPTS:
                    raise
                self.counts[f"{what}_retries"] += 1
                await asyncio.sleep(attempt)
        raise AssertionError("unreachable")

    async def authorize(self, p: Parked) -> None:
        started = time.monotonic()
        self.counts["started"] += 1
        try:
            outcome = await self._retrying(
                lambda: self.kartu.authorize(
                    p.payment_id,
                    amount=p.amount,
                    customer_id=self.customer_id,
                    card_token=self.card_token,
                    redirect_url="https://merchant.example/return",
                ),
                "start",
            )
            status, reason = outcome.status, outcome.reason
            if status in UNDECIDED:  # not decided within the client's wait: it carries on
                state = await self._retrying(
                    lambda: self.kartu.wait_payment(p.payment_id, timeout=120), "start"
                )
                status, reason = state.status, state.decline_reason
        except Exception as exc:  # counted as a wrong payment, the run goes on
            p.start_error = f"{type(exc).__name__}: {exc}"
            self.counts["start_failed"] += 1
            return
        p.first_answer_s = time.monotonic() - started
        if status is not PaymentStatus.AUTHORIZED:
            p.start_error = f"first answer {status.value}" + (f" ({reason})" if reason else "")
            self.counts["start_failed"] += 1
            return
        p.authorized = True
        self.counts["authorized"] += 1
        self.last_authorized = datetime.now(UTC)
        if p.capture:
            self.captures.append(asyncio.create_task(self._capture_later(p)))

    async def deadline_of(self, payment_id: str) -> datetime:
        state = await self._retrying(lambda: self.kartu.payment_status(payment_id), "capture")
        if state.authorization_expires_at is None:
            raise RuntimeError(f"{payment_id} has no authorizationExpiresAt")
        return aware(state.authorization_expires_at)

    async def _capture_later(self, p: Parked) -> None:
        try:
            deadline = await self.deadline_of(p.payment_id)
            now = datetime.now(UTC)
            room = max(deadline - self.capture_margin - now, timedelta(0))
            await asyncio.sleep((room * p.capture_point).total_seconds())
            async with self.capture_gate:
                result = await self._retrying(
                    lambda: self.kartu.capture(
                        p.payment_id, idempotency_key=f"{p.payment_id}_capture"
                    ),
                    "capture",
                )
        except ActionRefused as exc:
            p.capture_error = f"refused: {exc}"
        except Exception as exc:  # counted as a wrong payment, the run goes on
            p.capture_error = f"{type(exc).__name__}: {exc}"
        else:
            if result.outcome == "captured":
                self.counts["captured"] += 1
                return
            p.capture_error = f"answered {result.outcome}: {result.reason}"
        self.counts["capture_failed"] += 1

    async def probe(self, run: str) -> timedelta:
        """One authorization first (not counted, voided at once): warms the worker up and
        tells the stack's window."""
        payment_id = f"pk_{run}_probe"
        outcome = await self.kartu.authorize(
            payment_id,
            amount=AMOUNT,
            customer_id=self.customer_id,
            card_token=self.card_token,
            redirect_url="https://merchant.example/return",
        )
        if outcome.status is not PaymentStatus.AUTHORIZED:
            raise RuntimeError(f"the probe authorization ended {outcome.status.value}")
        window = await self.deadline_of(payment_id) - datetime.now(UTC)
        await self.kartu.void(payment_id, "parked bench: probe")
        return window


async def drive(driver: Driver, plan: list[Parked], rate: float, concurrency: int) -> None:
    """Start the plan at ``rate`` per second, at most ``concurrency`` waiting for an answer;
    a stack slower than the rate holds the schedule back (the report gives the rate reached)."""
    gate = asyncio.Semaphore(concurrency)
    began = time.monotonic()
    running: set[asyncio.Task[None]] = set()

    async def one(p: Parked) -> None:
        try:
            await driver.authorize(p)
        finally:
            gate.release()

    for index, p in enumerate(plan):
        delay = began + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        task = asyncio.create_task(one(p))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)


def open_query(customer_id: str) -> str:
    return (
        "WorkflowType = 'AuthCapturePayment' AND ExecutionStatus = 'Running' "
        f"AND KartuCustomerId = '{customer_id}'"
    )


async def open_count(client: Client, customer_id: str) -> int | None:
    """This run's payments still open, as visibility says (eventually consistent)."""
    with contextlib.suppress(RPCError):
        return (await client.count_workflows(open_query(customer_id))).count
    return None


SIDE_WORKFLOWS = ("UnmatchedCallback", "PaymentReview")


async def side_workflows(client: Client, since: datetime) -> dict[str, int | None]:
    """Workflows the run set off besides its payments: callbacks that found no open payment
    (the sandbox's expiry callback after Kartu closed it) and reviews Kartu raised (a
    difference it saw between itself and the provider). On a running stack other traffic
    counts too."""
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    counts: dict[str, int | None] = {}
    for name in SIDE_WORKFLOWS:
        counts[name] = None
        with contextlib.suppress(RPCError):
            query = f"WorkflowType = '{name}' AND StartTime >= '{stamp}'"
            counts[name] = (await client.count_workflows(query)).count
    return counts


async def wait_closed(
    client: Client,
    customer_id: str,
    not_before: datetime,
    settle_timeout: float,
    alive: Callable[[], None],
) -> int | None:
    """Until ``not_before`` (the last window's end), then until visibility shows none of the
    run's payments open or ``settle_timeout`` passes; returns how many it last saw open."""
    give_up = not_before + timedelta(seconds=settle_timeout)
    while True:
        alive()
        now = datetime.now(UTC)
        if now < not_before:
            await asyncio.sleep(min((not_before - now).total_seconds(), 5.0))
            continue
        count = await open_count(client, customer_id)
        if count == 0 or now > give_up:
            return count
        await asyncio.sleep(2.0)


async def progress(
    driver: Driver, watch: RssWatch, client: Client, every: float, began: float
) -> None:
    while True:
        await asyncio.sleep(every)
        c = driver.counts
        open_now = await open_count(client, driver.customer_id)
        print(
            f"[{time.monotonic() - began:6.0f} s] started {c['started']}, authorized "
            f"{c['authorized']}, captured {c['captured']}, failed "
            f"{c['start_failed'] + c['capture_failed']}, open {open_now}, "
            f"worker RSS {watch.worker_mb()} MB",
            file=sys.stderr,
            flush=True,
        )


# --- reading back -----------------------------------------------------------------------------


async def read_back(client: Client, p: Parked) -> None:
    """The payment's whole history: its size, its final state (the completion's result),
    its expiry timer's times."""
    handle = client.get_workflow_handle(payment_workflow_id(p.payment_id))
    try:
        history = await handle.fetch_history()
    except RPCError as exc:
        p.read_error = f"history: {exc}"
        return
    events = history.events
    p.events = len(events)
    p.history_bytes = sum(event.ByteSize() for event in events)
    p.activities = activity_names(events)
    last = events[-1]
    p.closed = CLOSED.get(last.event_type)
    state: PaymentState | None = None
    if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        result = last.workflow_execution_completed_event_attributes.result.payloads
        state = (await client.data_converter.decode(result, [PaymentState]))[0]
    elif p.closed is None:  # still running: its state says where it is stuck
        with contextlib.suppress(Exception):
            state = await handle.query("state", result_type=PaymentState)
    if state is not None:
        apply_state(p, state)
        # A capture also ends the window's timer (cancelled): only an expiry has a timing.
        if p.deadline is not None and p.status == PaymentStatus.EXPIRED:
            p.timing = expiry_timing(events, p.deadline)


async def read_all(
    client: Client, control: SandboxControl, plan: list[Parked], concurrency: int
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(p: Parked) -> None:
        async with gate:
            await read_back(client, p)

    await asyncio.gather(*(one(p) for p in plan))
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in (await control.ledger())["payments"]:
        by_order[entry["orderId"]].append(entry)
    for p in plan:
        apply_ledger(p, by_order.get(p.payment_id, []))


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Target:
    """The stack the run drives: its client, sandbox, processes to watch, health check."""

    kartu: KartuClient
    sandbox_url: str
    watched: list[tuple[str, int]]
    alive: Callable[[], None] = lambda: None

    @property
    def client(self) -> Client:
        return self.kartu.temporal


async def own_stack(args: argparse.Namespace, cleanup: contextlib.AsyncExitStack) -> Target:
    """A stack of its own (``LocalStack``, what ``kartu up`` runs) with the run's window,
    stopped (and its temporary directory removed) by ``cleanup``."""
    if args.data_dir:
        data_dir = args.data_dir
    else:
        tmp = tempfile.TemporaryDirectory(prefix="kartu-parked-", ignore_cleanup_errors=True)
        data_dir = Path(cleanup.enter_context(tmp))
    stack = bench_stack(
        data_dir, "kartu-parked", sandbox_auth_window=timedelta(seconds=args.window)
    )
    cleanup.push_async_callback(asyncio.to_thread, stack.stop)
    print(f"starting a stack in {data_dir} ...", file=sys.stderr, flush=True)
    await stack.start()
    kartu = KartuClient(await stack.connect(), task_queue=stack.config.task_queue)
    watched = [(name, pid) for name, pid in stack.pids().items() if pid]
    return Target(kartu, stack.config.sandbox_url, watched, stack.raise_if_died)


async def running_stack(args: argparse.Namespace, notes: list[str]) -> Target:
    """A ``kartu up`` already running, reached as the environment says (as bench.payments)."""
    kartu = await KartuClient.connect()
    pids = args.worker_pid or await worker_pids_on_queue(kartu.temporal, kartu.task_queue)
    if not pids:
        notes.append("no worker of the task queue found on this machine: no RSS")
    return Target(kartu, args.sandbox, [("worker", pid) for pid in pids])


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Parked]]:
    began = time.monotonic()
    facts = RunFacts(settings=settings_of(args), machine=machine())
    async with contextlib.AsyncExitStack() as cleanup:
        if args.stack == "own":
            target = await own_stack(args, cleanup)
        else:
            target = await running_stack(args, facts.notes)
        kartu, client, sandbox_url = target.kartu, target.client, target.sandbox_url
        watch = RssWatch(target.watched, args.rss_interval)
        sampling = asyncio.create_task(watch.run())
        cleanup.callback(sampling.cancel)
        http = await cleanup.enter_async_context(
            httpx.AsyncClient(base_url=sandbox_url, timeout=300.0)
        )
        control = SandboxControl(sandbox_url, http=http)
        await control.clear_faults()
        run_id = uuid.uuid4().hex[:8]
        run_began = datetime.now(UTC)
        card_token, customer_id = await bound_card(kartu, run_id)
        driver = Driver(
            kartu,
            card_token,
            customer_id,
            capture_margin=timedelta(seconds=args.capture_margin),
            concurrency=args.concurrency,
        )
        window = await driver.probe(run_id)
        facts.settings["stack_window_s"] = round(window.total_seconds())
        if window > timedelta(seconds=args.max_window):
            raise SystemExit(
                f"the stack's authorization window is {window}: more than --max-window "
                f"{args.max_window:g} s (start kartu up with --sandbox-auth-window 900s)"
            )
        plan = make_plan(args.n, args.capture_fraction, args.seed, run_id)
        ticker = asyncio.create_task(progress(driver, watch, client, args.progress, began))
        cleanup.callback(ticker.cancel)
        print(
            f"run {run_id}: {args.n} authorizations at {args.rate:g}/s, window "
            f"{window.total_seconds():.0f} s, {args.capture_fraction:.0%} captured",
            file=sys.stderr,
            flush=True,
        )
        started = time.monotonic()
        await drive(driver, plan, args.rate, args.concurrency)
        facts.start_seconds = time.monotonic() - started
        if window.total_seconds() < facts.start_seconds:
            facts.notes.append(
                f"the window ({window.total_seconds():.0f} s) was shorter than the starts "
                f"({facts.start_seconds:.0f} s): not all were held at once"
            )
        await asyncio.gather(*driver.captures)
        left_open = await wait_closed(
            client,
            customer_id,
            driver.last_authorized + window + timedelta(seconds=2),
            args.settle_timeout,
            target.alive,
        )
        if left_open:
            facts.notes.append(f"{left_open} payments still open after the settle timeout")
        ticker.cancel()
        sampling.cancel()
        watch.sample()
        print("reading back every payment ...", file=sys.stderr, flush=True)
        await read_all(client, control, plan, args.concurrency)
        facts.side_workflows = await side_workflows(client, run_began)
        if facts.side_workflows.get("PaymentReview"):
            facts.notes.append("Kartu raised reviews during the run: see PaymentReview workflows")
        facts.start_retries = driver.counts["start_retries"]
        facts.capture_retries = driver.counts["capture_retries"]
        facts.rss = watch.peaks
        facts.rss_timeline = watch.timeline
        facts.wall_seconds = time.monotonic() - began
        report = summarize(plan, facts, at=datetime.now(UTC))
    return report, plan


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "n": args.n,
        "rate_per_s": args.rate,
        "concurrency": args.concurrency,
        "capture_fraction": args.capture_fraction,
        "capture_margin_s": args.capture_margin,
        "window_s": args.window if args.stack == "own" else None,
        "stack": args.stack,
        "seed": args.seed,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="authorizations (default 10000)")
    parser.add_argument("--rate", type=float, default=25.0, help="starts per second (25)")
    parser.add_argument("--concurrency", type=int, default=20, help="starts in flight (20)")
    parser.add_argument(
        "--capture-fraction", type=float, default=0.1, help="share captured before expiry (0.1)"
    )
    parser.add_argument(
        "--capture-margin", type=float, default=10.0, help="captures end this long before expiry"
    )
    parser.add_argument(
        "--window", type=float, default=900.0, help="own stack: the sandbox's window, s (900)"
    )
    parser.add_argument(
        "--stack",
        choices=("own", "running"),
        default="own",
        help="own: start a stack for the run (default); running: a `kartu up` already running",
    )
    parser.add_argument("--sandbox", default="http://127.0.0.1:8090", help="running: sandbox URL")
    parser.add_argument(
        "--worker-pid", type=int, action="append", help="running: the worker's pid (repeatable)"
    )
    parser.add_argument("--data-dir", type=Path, help="own: stack data kept here (default: temp)")
    parser.add_argument(
        "--max-window", type=float, default=3600.0, help="refuse a longer window, s (3600)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=300.0, help="s after the last window"
    )
    parser.add_argument("--rss-interval", type=float, default=0.5, help="RSS sampling, s (0.5)")
    parser.add_argument("--progress", type=float, default=10.0, help="progress line every s (10)")
    parser.add_argument("--seed", type=int, default=7, help="which payments are captured, when")
    parser.add_argument("--output", type=Path, help="JSON file for the figures")
    parser.add_argument("--dump", type=Path, help="JSON lines: every payment's facts")
    args = parser.parse_args(argv)
    if args.n < 1 or args.concurrency < 1 or args.rate <= 0:
        parser.error("-n, --concurrency and --rate must be positive")
    if not 0 <= args.capture_fraction <= 1:
        parser.error("--capture-fraction is a share: 0 to 1")
    if args.stack == "own" and args.window <= args.capture_margin:
        parser.error("--window must be longer than --capture-margin")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report, plan = asyncio.run(run(args))
    if args.dump:
        args.dump.write_text("".join(json.dumps(p.__dict__, default=str) + "\n" for p in plan))
    print("\n".join(lines(report)))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = args.output or RESULTS / f"parked-{args.n}-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"figures written to {out}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
