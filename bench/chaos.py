"""Kartu's chaos run: every payment flow through the full stack while things break.

The run starts its own stack on free loopback ports: the Temporal dev server (SQLite file in the
data directory, Kartu's search attributes), the sandbox (``python -m sandbox``, SQLite ledger,
callbacks to the gateway), the gateway (``python -m gateway``) and one worker (``python
worker.py``), all with the same payload-codec keys. It then drives N payments, mixing every flow
(direct frictionless, direct 3DS passed or abandoned, auth then full or partial capture, 3DS auth
then capture, auth then void, direct then refund, declines), while:

- the sandbox injects faults: 5xx and 429 answers (with bursts), added latency, ambiguous
  failures (the call is applied, the answer lost or too late), and duplicated, dropped, delayed
  and reordered callbacks;
- a worker is SIGKILLed and restarted ``kills`` times, and the dev server restarted once.

With ``--workers N`` N worker processes poll the task queue and the kills go to them in turn
(worker 1, 2, 3, 1, ...), never all at once: a killed worker is started again at once, and with
N > 1 the next kill waits until it polls again, the others running meanwhile. For each kill the
report compares the payments in flight at it with those that ran in the quiet period before it
(``bench.chaos_workers``): the delay a worker's death costs. ``--worker-series 1,2,3`` runs the
same plan once per worker count, each on a fresh stack, and reports flows/s and the pass line
for each.

Then the faults stop and every payment is waited for until it is terminal. A long-outage phase
follows: a few more payments are in their 3DS challenge when the sandbox's status and charge APIs
start failing (5xx on every call) for longer than their 3DS window and provider poll interval;
their customers pass 3DS meanwhile. While nobody can ask the provider none may decide anything
(they wait PENDING_PROVIDER); once it answers they settle. Every payment of both phases is then
reconciled with the sandbox's ledger, and the run ends with one reconciliation (the workflow
``kartu reconcile`` runs) over all of them. The pass line: every payment terminal, none decided
during the outage, zero mismatches between workflow state and ledger, duplicate charges,
duplicate refunds, compensations owed but missing, and zero differences found by reconciliation.

    .venv/bin/python -m bench.chaos -n 1000 --kills 5
    .venv/bin/python -m bench.chaos -n 1000 --kills 6 --worker-series 1,2,3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import httpx
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError

from ayoconnect.models import CardData
from ayoconnect.security import encrypt_card
from sandbox.control_client import SandboxControl
from sandbox.customer import CustomerError, authenticate_3ds
from starter.client import ActionRefused, KartuClient, KartuError, KartuTimeout, KartuUnavailable
from starter.client.reconcile import run_reconciliation
from starter.stack import Child, LocalStack, StackConfig
from workflows import AuthCapturePaymentWorkflow, DirectPaymentWorkflow
from workflows.ids import payment_workflow_id
from workflows.models import (
    AWAITING_PROVIDER,
    PaymentInput,
    PaymentOutcome,
    PaymentState,
    PaymentStatus,
    RefundState,
    RefundStatus,
)

from .chaos_workers import (
    Disruption,
    FailoverFigures,
    Timing,
    WorkerFigures,
    WorkerPool,
    failover_figures,
    victim,
    worker_series,
)

RESULTS = Path(__file__).parent / "results"
FRICTIONLESS = "4111111111111111"
CHALLENGE = "4000000000003220"
DECLINED = "4000000000000002"
CUSTOMER = "CUSTCHAOS01"
REDIRECT_URL = "https://merchant.example/return"
API_KEY = "chaos-gateway-api-key-0123456789"
# The sandbox ends an unanswered 3DS page after SESSION_SECONDS; Kartu waits a little longer,
# so an abandoned challenge ends on the provider's word, not on Kartu's timer.
SESSION_SECONDS = 30
CHALLENGE_WINDOW = timedelta(seconds=45)
# Callback retries after 60/120/300 s, sped up: 3, 6 and 15 s.
TIME_FACTOR = 0.05

TERMINAL = frozenset(
    {
        PaymentStatus.PAID,
        PaymentStatus.CAPTURED,
        PaymentStatus.VOIDED,
        PaymentStatus.EXPIRED,
        PaymentStatus.DECLINED,
        PaymentStatus.FAILED,
        PaymentStatus.REFUNDED,
    }
)
# Kartu's final status → the ledger status it must agree with (None: no ledger entry is fine).
LEDGER_STATUS: dict[PaymentStatus, set[str | None]] = {
    PaymentStatus.PAID: {"SUCCESS"},
    PaymentStatus.CAPTURED: {"CAPTURED"},
    PaymentStatus.VOIDED: {"VOIDED"},
    PaymentStatus.EXPIRED: {"VOIDED"},
    PaymentStatus.REFUNDED: {"REFUNDED"},
    PaymentStatus.DECLINED: {"FAILED", None},
    PaymentStatus.FAILED: {"FAILED", None},
}
MONEY_HELD = frozenset({"SUCCESS", "CAPTURED", "AUTHORIZED"})
CHARGES = frozenset({"PAY", "AUTHORIZE"})
# The provider has given its word: PENDING_PROVIDER is not decided (nor terminal).
DECIDED = [s for s in PaymentStatus if s not in AWAITING_PROVIDER]

T = TypeVar("T")


class Flow(StrEnum):
    DIRECT = "direct"
    DIRECT_3DS = "direct_3ds"
    DIRECT_3DS_ABANDONED = "direct_3ds_abandoned"
    AUTH_CAPTURE = "auth_capture"
    AUTH_CAPTURE_PARTIAL = "auth_capture_partial"
    AUTH_3DS_CAPTURE = "auth_3ds_capture"
    AUTH_VOID = "auth_void"
    DIRECT_REFUND = "direct_refund"
    DECLINE = "decline"

    @property
    def card(self) -> str:
        if self is Flow.DECLINE:
            return DECLINED
        challenge = (Flow.DIRECT_3DS, Flow.DIRECT_3DS_ABANDONED, Flow.AUTH_3DS_CAPTURE)
        return CHALLENGE if self in challenge else FRICTIONLESS

    @property
    def authorizes(self) -> bool:
        return self.value.startswith("auth")


# --- faults ----------------------------------------------------------------------------------

ERRORS = [503, 429, 500]


def api_faults(error_rate: float) -> dict[str, Any]:
    """Refusals (5xx, 429), latency, and ambiguous failures (applied, answer lost or late)."""
    money = {
        "error_rate": error_rate,
        "status": ERRORS,
        "latency_ms": 30,
        "drop_rate": 0.05,
        "delay_rate": 0.01,
        "delay_ms": 16_000,  # past the client's 15 s read timeout: ambiguous
    }
    return {
        "create_charge": money,
        "void": money,
        "refund": money,
        "payment_status": {"error_rate": error_rate, "status": ERRORS, "latency_ms": 20},
        "callback": {
            "drop_rate": 0.1,
            "duplicate_rate": 0.2,
            "delay_rate": 0.1,
            "delay_ms": 3000,
            "reorder_rate": 0.1,
        },
    }


CALM = api_faults(0.15)
BURST = api_faults(0.7)
# The long outage: every status and charge call refused (5xx), nothing applied.
OUTAGE = {
    "create_charge": {"error_rate": 1.0, "status": [500, 502, 503]},
    "payment_status": {"error_rate": 1.0, "status": [500, 502, 503]},
}
# Its payments' windows (the outage outlasts both): the 3DS wait, and the interval Kartu asks
# the provider again at while it waits for its word (PENDING_PROVIDER).
OUTAGE_CHALLENGE_WINDOW = timedelta(seconds=3)
OUTAGE_PROVIDER_POLL_MAX = timedelta(seconds=2)
# The outage lasts until every payment in flight has said PENDING_PROVIDER: its window ended
# and two status look-ups failed, each after the activity's retries (about 15 s each, so some
# 33 s in all: what the phase costs in real time). At least longer than both windows, at most
# OUTAGE_MAX_SECONDS.
OUTAGE_MIN_SECONDS = 10.0
OUTAGE_MAX_SECONDS = 120.0
# The phase's flows, in turn; a 1,000-payment run has 25 outage payments, CI size 5.
OUTAGE_FLOWS = (
    Flow.DIRECT_3DS,
    Flow.AUTH_3DS_CAPTURE,
    Flow.DIRECT_3DS_ABANDONED,
    Flow.AUTH_3DS_CAPTURE,
    Flow.DIRECT_3DS,
)
OUTAGE_SHARE = 40  # one outage payment per this many driven ones (at least len(OUTAGE_FLOWS))
# A capture or void refused with the hold intact (the provider failed through every retry of
# the call) is asked again under a new idempotency key, as a merchant would, this many times.
SETTLE_ATTEMPTS = 3
# The closing reconciliation: a difference is looked at again after this long before it counts.
RECONCILE_CONFIRM_AFTER = timedelta(seconds=10)
RECONCILE_TIMEOUT = 180.0
FAULT_KINDS = ("errors", "drops", "delays", "duplicates", "reorders")
# Seconds between two kills or restarts, so each outage is its own.
EVENT_GAP = 6.0


@dataclass(frozen=True)
class Pace:
    """What the run waits for in real time. The defaults are the README run's; a CI-size run
    shortens them and keeps their order (the sandbox ends an abandoned 3DS page before Kartu's
    window would, a kill or restart is over before the next one)."""

    session_seconds: int = SESSION_SECONDS
    challenge_window: timedelta = CHALLENGE_WINDOW
    event_gap: float = EVENT_GAP


# --- the report ------------------------------------------------------------------------------


@dataclass
class OutageFigures:
    """The long-outage phase."""

    payments: int = 0  # in flight when the provider's status and charge APIs went down
    seconds: float = 0.0  # how long every status and charge call failed
    pending_provider: int = 0  # payments seen PENDING_PROVIDER during it
    decided_during: int = 0  # payments that said a decided status meanwhile (must be 0)
    settle_seconds: float = 0.0  # from the provider's return to every payment terminal
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class ReconcileFigures:
    """The closing reconciliation run (what ``kartu reconcile`` runs)."""

    ran: bool = False
    checked: int = 0
    agreeing: int = 0
    differing: int = 0
    unknown: int = 0  # unknown at the provider (never charged), or Kartu's state unreadable
    in_progress: int = 0
    needs_attention: int = 0
    unmatched_callbacks: int = 0
    seconds: float = 0.0


@dataclass
class ChaosReport:
    payments: int
    seed: int
    faults_injected: int = 0
    kills: int = 0
    server_restarts: int = 0
    terminal: int = 0
    # Payments (of either phase) that went through PENDING_PROVIDER on their way.
    waited_for_provider: int = 0
    mismatches: int = 0
    duplicate_charges: int = 0
    duplicate_refunds: int = 0
    missing_compensations: int = 0
    wall_seconds: float = 0.0
    drive_seconds: float = 0.0
    settle_seconds: float = 0.0
    # The drive alone: from the first payment's start to its last driven payment's last answer
    # (kills, the restart and the fault bursts included), and the driven payments per second.
    flows_seconds: float = 0.0
    flows_per_s: float = 0.0
    driver_retries: int = 0
    fault_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    flows: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    outage: OutageFigures = field(default_factory=OutageFigures)
    reconciliation: ReconcileFigures = field(default_factory=ReconcileFigures)
    workers: WorkerFigures = field(default_factory=WorkerFigures)
    failover: FailoverFigures = field(default_factory=FailoverFigures)
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Every payment of the run: the driven ones and the outage phase's."""
        return self.payments + self.outage.payments

    @property
    def passed(self) -> bool:
        clean = (
            self.mismatches,
            self.duplicate_charges,
            self.duplicate_refunds,
            self.missing_compensations,
            self.outage.decided_during,
            self.reconciliation.differing,
            # Not a money fault, but then the run was not the N-worker run it says it was.
            self.workers.unexpected_exits,
            self.workers.not_back,
        )
        return self.terminal == self.total and self.reconciliation.ran and not any(clean)

    def pass_line(self) -> str:
        """Nothing lost or doubled, in one line."""
        return (
            f"terminal {self.terminal}/{self.total}, mismatches {self.mismatches}, duplicate "
            f"charges {self.duplicate_charges}, duplicate refunds {self.duplicate_refunds}, "
            f"compensations missing {self.missing_compensations}, reconciliation differing "
            f"{self.reconciliation.differing if self.reconciliation.ran else 'not run'}: "
            f"{'PASS' if self.passed else 'FAIL'}"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def lines(self) -> list[str]:
        o, r = self.outage, self.reconciliation
        recon = (
            f"checked {r.checked}, agreeing {r.agreeing}, differing {r.differing}, "
            f"unknown {r.unknown}, in progress {r.in_progress}, waiting for ops "
            f"{r.needs_attention} ({r.seconds:.1f} s)"
            if r.ran
            else "did not run"
        )
        f, w = self.failover, self.workers
        extra = "n/a" if f.extra_p99_s is None else f"{f.extra_p99_s:.2f} s"
        if f.extra_p50_s is not None:
            extra += f" (p50 - quiet p50: {f.extra_p50_s:.2f} s)"
        lost = f", {f.unfinished} never finished" if f.unfinished else ""
        lost += f", {f.timed_out} first answers timed out (PENDING)" if f.timed_out else ""
        exits = (
            f"worker exits nobody caused    {w.unexpected_exits}, killed and not back {w.not_back}"
        )
        return [
            f"payments driven               {self.payments}",
            f"faults injected               {self.faults_injected}",
            f"worker processes              {w.line()}",
            f"worker kills (SIGKILL)        {self.kills}",
            f"dev server restarts           {self.server_restarts}",
            f"in flight at a kill, to end   {f.in_flight.text()}{lost}",
            f"  quiet moments before them   {f.quiet.text()} ({f.periods()})",
            f"  extra delay (p99 - quiet)   {extra}",
            f"  slowest in flight           {f.slowest[0] if f.slowest else 'none'}",
            exits,
            f"long outage (status, charge)  {o.seconds:.1f} s of 5xx, {o.payments} payments "
            f"in flight",
            f"  seen PENDING_PROVIDER       {o.pending_provider}/{o.payments}",
            f"  decided during the outage   {o.decided_during}",
            f"  settled after it in         {o.settle_seconds:.1f} s",
            f"payments terminal             {self.terminal}/{self.total} "
            f"({self.waited_for_provider} waited PENDING_PROVIDER on the way)",
            f"state/ledger mismatches       {self.mismatches}",
            f"duplicate charges             {self.duplicate_charges}",
            f"duplicate refunds             {self.duplicate_refunds}",
            f"compensations owed, missing   {self.missing_compensations}",
            f"reconciliation                {recon}",
            f"wall time                     {self.wall_seconds:.1f} s "
            f"(drive {self.drive_seconds:.1f} s, settle {self.settle_seconds:.1f} s, "
            f"outage phase {o.seconds + o.settle_seconds:.1f} s)",
            f"flows/s                       {self.flows_per_s:.2f} ({self.payments} payments "
            f"driven in {self.flows_seconds:.1f} s, kills and faults included)",
            f"result                        {'PASS' if self.passed else 'FAIL'}",
        ]


# --- the stack -------------------------------------------------------------------------------


@functools.cache
def quiet_runtime() -> Runtime:
    """A Temporal runtime that logs errors only: the outage's retry warnings are expected."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


@dataclass
class ChaosStack:
    """The product's local stack (``starter.stack.LocalStack``, what ``kartu up`` runs) with
    the chaos run's settings: its own codec keys, sped-up sandbox callbacks, a short 3DS page
    session, seeded faults; no UI, no reconciliation schedule (the run reconciles itself).
    ``config`` overrides ``StackConfig`` fields (e.g. the ports a test picked); ``workers``
    worker processes poll the task queue (``WorkerPool``)."""

    data_dir: Path
    seed: int
    task_queue: str = "kartu-chaos"
    codec_keys: str = field(
        default_factory=lambda: "chaos:" + base64.b64encode(os.urandom(32)).decode()
    )
    config: dict[str, Any] = field(default_factory=dict)
    pace: Pace = field(default_factory=Pace)
    workers: int = 1
    local: LocalStack | None = None
    pool: WorkerPool | None = None
    worker_starts: int = 0

    def _environ(self) -> dict[str, str]:
        return {
            # No metrics endpoints (their default ports are fixed), unless the operator asks.
            "KARTU_WORKER_METRICS_PORT": "0",
            "KARTU_GATEWAY_METRICS_PORT": "0",
            **os.environ,
            "SANDBOX_TIME_FACTOR": str(TIME_FACTOR),
            "SANDBOX_SESSION_SECONDS": str(self.pace.session_seconds),
            "SANDBOX_FAULT_SEED": str(self.seed),
            "SANDBOX_LOG_LEVEL": "warning",
            "KARTU_GATEWAY_API_KEY": API_KEY,
            "KARTU_GATEWAY_LOG_LEVEL": "warning",
            "KARTU_GRACEFUL_SHUTDOWN_SECONDS": "2",
        }

    async def start(self) -> Client:
        options: dict[str, Any] = {
            "temporal_port": 0,
            "sandbox_port": 0,
            "gateway_port": 0,
            "ui_port": 0,
            "headless": True,
            "task_queue": self.task_queue,
            # Kept with the SQLite file, so a failed run's histories can be decoded and replayed.
            "codec_keys": self.codec_keys,
            "reconciliation_schedule": False,
            **self.config,
        }
        self.local = LocalStack(StackConfig(data_dir=self.data_dir, **options), self._environ())
        await self.local.start()
        self.pool = WorkerPool(self.local, self.workers)
        await self.pool.start_others()
        self.worker_starts = self.workers
        return await self.connect()

    async def connect(self) -> Client:
        assert self.local is not None
        return await self.local.connect(runtime=quiet_runtime())

    @property
    def sandbox_url(self) -> str:
        assert self.local is not None
        return self.local.config.sandbox_url

    @property
    def gateway_url(self) -> str:
        assert self.local is not None
        return self.local.config.gateway_url

    def kill_worker(self, index: int = 0) -> Child:
        """SIGKILL one worker's process group, as a power cut would, then start a new one."""
        assert self.pool is not None
        child = self.pool.kill_and_restart(index)
        self.worker_starts += 1
        return child

    async def restart_devserver(self) -> None:
        """Stop the dev server and start it again on the same SQLite file and port."""
        assert self.local is not None
        await self.local.restart_temporal()

    def stop(self) -> None:
        # The extra workers are told to stop with the stack's own parts, then waited for.
        if self.pool is not None:
            self.pool.terminate_others()
        if self.local is not None:
            self.local.stop()
        if self.pool is not None:
            self.pool.wait_others(5.0)


# --- driving payments ------------------------------------------------------------------------


@dataclass
class Drive:
    payment_id: str
    flow: Flow
    amount: Decimal
    first_status: str | None = None
    error: str | None = None
    # Monotonic times of the driver's first call and last answer (None: not driven, or failed).
    began: float | None = None
    ended: float | None = None
    # The first answer came back PENDING: the backend's call timed out (issue 10's failover
    # target: no call times out because a worker died).
    first_timed_out: bool = False

    def timing(self, origin: float) -> Timing | None:
        """Seconds since ``origin``; None for a payment never driven."""
        if self.began is None:
            return None
        ended = None if self.ended is None else round(self.ended - origin, 3)
        began = round(self.began - origin, 3)
        return Timing(self.payment_id, began, ended, self.flow.value, self.first_timed_out)


RETRYABLE = (KartuUnavailable, KartuTimeout, RPCError, TimeoutError, httpx.HTTPError, OSError)


class Driver:
    """Plays the merchant's backend and its customers, retrying what the outage refuses."""

    def __init__(
        self,
        kartu: KartuClient,
        cards: dict[str, str],
        seed: int,
        challenge_window: timedelta = CHALLENGE_WINDOW,
    ) -> None:
        self.kartu = kartu
        self.cards = cards
        self.rng = random.Random(seed)
        self.challenge_window = challenge_window
        self.retries = 0

    async def retry(self, call: Callable[[], Awaitable[T]], budget: float = 180.0) -> T:
        """The same idempotent call again until it answers (dev server down, worker dead)."""
        deadline = time.monotonic() + budget
        delay = 0.5
        while True:
            try:
                return await call()
            except RETRYABLE:
                if time.monotonic() > deadline:
                    raise
            except KartuError as exc:  # generic failures (not refusals) during an outage
                if type(exc) is not KartuError or time.monotonic() > deadline:
                    raise
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def run(self, drive: Drive) -> None:
        drive.began = time.monotonic()
        try:
            await self._run(drive)
            # Its end: the last answer the merchant waits for (decided, captured, voided,
            # refunded; an abandoned challenge's first answer).
            drive.ended = time.monotonic()
        except Exception as exc:  # recorded; the reconciliation judges the payment
            drive.error = f"{type(exc).__name__}: {exc}"

    async def _run(self, d: Drive) -> None:
        first = await self._start(d)
        d.first_status = first.status.value
        if d.flow is Flow.DIRECT_3DS_ABANDONED:
            return
        url = first.authentication_url
        if first.status is PaymentStatus.CHALLENGE and url:
            await asyncio.sleep(self.rng.uniform(0.2, 3.0))
            with contextlib.suppress(CustomerError):
                await self.retry(lambda: authenticate_3ds(url))
        state = await self._decided(d.payment_id)
        if d.flow.authorizes and state.status is PaymentStatus.AUTHORIZED:
            await self._settle_authorization(d)
        elif d.flow is Flow.DIRECT_REFUND and state.status is PaymentStatus.PAID:
            await self.retry(lambda: self.kartu.refund(d.payment_id, "chaos refund", timeout=20))

    async def _start(self, d: Drive) -> PaymentOutcome:
        common: dict[str, Any] = {
            "customer_id": CUSTOMER,
            "amount": d.amount,
            "redirect_url": REDIRECT_URL,
            "encrypted_card": self.cards[d.flow.card],
            "challenge_window": self.challenge_window,
            "timeout": 20,
        }
        start = self.kartu.authorize if d.flow.authorizes else self.kartu.pay
        outcome = await self.retry(lambda: start(d.payment_id, **common))
        if outcome.status is not PaymentStatus.PENDING:
            return outcome
        d.first_timed_out = True
        # Not answered in time (worker dead, server down): the first outcome from the state.
        statuses = [s for s in PaymentStatus if s is not PaymentStatus.PENDING]
        wait = self.kartu.wait_payment
        return (await self.retry(lambda: wait(d.payment_id, statuses, timeout=120))).outcome()

    async def _decided(self, payment_id: str) -> PaymentState:
        """Until the provider's word is in: PENDING_PROVIDER is waited through too."""
        return await self.retry(lambda: self.kartu.wait_payment(payment_id, DECIDED, timeout=120))

    # --- the long-outage phase --------------------------------------------------------------

    async def start_with_short_windows(self, d: Drive) -> PaymentOutcome:
        """Update-with-start by workflow name, as any Temporal SDK may (``KartuClient.pay`` has
        no ``provider_poll_max``): the outage phase's windows are seconds, not minutes."""
        payment = PaymentInput(
            payment_id=d.payment_id,
            customer_id=CUSTOMER,
            amount=d.amount,
            encrypted_card=self.cards[d.flow.card],
            redirect_url=REDIRECT_URL,
            challenge_window=OUTAGE_CHALLENGE_WINDOW,
            provider_poll_max=OUTAGE_PROVIDER_POLL_MAX,
        )
        workflow: Any = AuthCapturePaymentWorkflow if d.flow.authorizes else DirectPaymentWorkflow

        async def start() -> PaymentOutcome:
            operation = WithStartWorkflowOperation(
                workflow.run,
                payment,
                id=payment_workflow_id(d.payment_id),
                task_queue=self.kartu.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            temporal = self.kartu.temporal
            async with asyncio.timeout(30):
                outcome: PaymentOutcome = await temporal.execute_update_with_start_workflow(
                    workflow.first_outcome, start_workflow_operation=operation
                )
            return outcome

        outcome = await self.retry(start)
        d.first_status = outcome.status.value
        return outcome

    async def pass_3ds_later(self, url: str) -> None:
        """The customer answers the challenge a moment later (the provider is down by then)."""
        await asyncio.sleep(self.rng.uniform(0.2, 2.0))
        with contextlib.suppress(CustomerError):
            await self.retry(lambda: authenticate_3ds(url))

    async def finish_after_outage(self, d: Drive) -> None:
        """Once the provider answers again: an authorization is captured, as merchants do."""
        try:
            state = await self._decided(d.payment_id)
            if d.flow.authorizes and state.status is PaymentStatus.AUTHORIZED:
                await self._settle_authorization(d)
        except Exception as exc:  # recorded; the reconciliation judges the payment
            d.error = f"{type(exc).__name__}: {exc}"

    async def _settle_authorization(self, d: Drive) -> None:
        """Capture (or void) the hold as a merchant does: a refusal that leaves the payment
        AUTHORIZED (the provider kept failing through every retry of the call) is tried again
        under a new idempotency key, a few times; any other refusal is final."""
        for attempt in range(1, SETTLE_ATTEMPTS + 1):
            key = f"{d.payment_id}-settle" + (f"-{attempt}" if attempt > 1 else "")
            try:
                await self._settle_once(d, key)
                return
            except ActionRefused as exc:
                held = exc.status is PaymentStatus.AUTHORIZED
                final = not held or "no attempt left" in exc.reason
                if final or attempt == SETTLE_ATTEMPTS:
                    d.error = f"ActionRefused: {exc}"
                    return
                self.retries += 1
                await asyncio.sleep(2.0)

    async def _settle_once(self, d: Drive, key: str) -> None:
        if d.flow is Flow.AUTH_VOID:
            await self.retry(lambda: self.kartu.void(d.payment_id, idempotency_key=key))
            return
        amount = (d.amount * Decimal("0.6")).quantize(Decimal("0.01"))
        part = amount if d.flow is Flow.AUTH_CAPTURE_PARTIAL else None
        await self.retry(lambda: self.kartu.capture(d.payment_id, part, idempotency_key=key))


def plan(n: int, seed: int, run: str) -> list[Drive]:
    """N payments, the flows in equal shares (shuffled), random amounts."""
    rng = random.Random(seed)
    flows = [list(Flow)[i % len(Flow)] for i in range(n)]
    rng.shuffle(flows)
    return [
        Drive(f"chaos_{run}_{i}", flow, Decimal(rng.randrange(10_000, 2_000_000)).quantize(1))
        for i, flow in enumerate(flows)
    ]


# --- chaos: faults, kills, the dev server restart -------------------------------------------


@dataclass
class Progress:
    total: int
    label: str = "chaos"
    show: bool = True
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def tick(self) -> None:
        self.done += 1
        if not self.show:
            return
        width = 30
        bar = "#" * int(width * self.done / self.total)
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        sys.stderr.write(
            f"\r{self.label:<8} [{bar:<{width}}] {self.done}/{self.total} {rate:6.1f}/s"
        )
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def log(message: str) -> None:
    sys.stderr.write(f"\n[chaos {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def schedule(kills: int, server_restarts: int) -> list[tuple[float, str]]:
    """Events at spread fractions of the drive: kills, and the restart(s) in between."""
    events = ["kill"] * kills
    for r in range(server_restarts):
        events.insert((r + 1) * len(events) // (server_restarts + 1) + r, "restart")
    return [((i + 1) / (len(events) + 1), event) for i, event in enumerate(events)]


async def chaos_events(
    stack: ChaosStack,
    control: SandboxControl,
    report: ChaosReport,
    progress: Progress,
    driving: asyncio.Event,
    origin: float,
) -> None:
    """Fault bursts while driving; each event once its share of payments is done (or, if the
    drive ends first, at once), at least the pace's event gap after the one before. Each event
    is kept in ``report.workers.events`` (seconds since ``origin``, the drive's start)."""
    events = schedule(report.kills, report.server_restarts)
    report.kills = report.server_restarts = 0
    burst_at = time.monotonic() + 5
    next_at = 0.0  # events at least the event gap apart
    while events:
        due = progress.done >= events[0][0] * progress.total or not driving.is_set()
        if not due or time.monotonic() < next_at:
            if time.monotonic() >= burst_at:
                await _burst(control)
                burst_at = time.monotonic() + 8
            await asyncio.sleep(0.2)
            continue
        _, event = events.pop(0)
        if event == "kill":
            await _kill(stack, report, origin)
        else:
            at = round(time.monotonic() - origin, 3)
            await stack.restart_devserver()
            over = round(time.monotonic() - origin, 3)
            report.workers.events.append(Disruption("restart", at, over_s=over))
            report.server_restarts += 1
            log("dev server restarted on its SQLite file")
        next_at = time.monotonic() + stack.pace.event_gap


async def _kill(stack: ChaosStack, report: ChaosReport, origin: float) -> None:
    """Kill the next worker in turn and start it again. With one worker its return is
    watched in the background (the schedule stays what it always was); with more, the next
    event waits until it polls again, so a kill never finds the others all down."""
    assert stack.pool is not None
    pool = stack.pool
    note_worker_exits(pool, report)
    index = victim(report.kills, pool.count)
    event = Disruption(
        "kill",
        round(time.monotonic() - origin, 3),
        worker=index + 1,
        others_running=pool.others_running(index),
    )
    child = stack.kill_worker(index)
    report.kills += 1
    report.workers.events.append(event)
    watch = pool.watch(child, event, origin)
    if pool.count == 1:
        log(f"worker SIGKILLed and restarted ({report.kills})")
        return
    await watch
    back = "polling again" if event.over_s is not None else "NOT polling again"
    log(f"worker {index + 1}/{pool.count} SIGKILLed and restarted ({report.kills}), {back}")


def note_worker_exits(pool: WorkerPool, report: ChaosReport) -> None:
    """A worker that died by itself is a problem of the run (it was not killed)."""
    for child in pool.exited():
        report.workers.unexpected_exits += 1
        report.problems.append(f"worker died without a kill: {child.died()}")


async def _burst(control: SandboxControl) -> None:
    """Two seconds of 5xx / 429 on most calls, then back to the calm rates."""
    with contextlib.suppress(httpx.HTTPError):
        await control.set_faults(BURST)
        await asyncio.sleep(2)
        await control.set_faults(CALM)


# --- settling and reconciling -----------------------------------------------------------------


@dataclass
class Final:
    drive: Drive
    state: PaymentState | None = None
    refund: RefundState | None = None
    read_error: str | None = None  # the last failed read of the workflow's state

    @property
    def terminal(self) -> bool:
        s = self.state
        if s is None or s.status not in TERMINAL or s.pending_compensation is not None:
            return False
        if self.drive.flow is Flow.DIRECT_REFUND and s.status is PaymentStatus.PAID:
            return self.refund is not None and self.refund.status in (
                RefundStatus.REFUNDED,
                RefundStatus.FAILED,
            )
        return True

    @property
    def status(self) -> str:
        """Kartu's final word: the payment's status, or REFUNDED when its refund went through."""
        if self.refund is not None and self.refund.status is RefundStatus.REFUNDED:
            return PaymentStatus.REFUNDED.value
        return self.state.status.value if self.state else "UNKNOWN"


async def read_final(driver: Driver, final: Final) -> None:
    pid = final.drive.payment_id
    try:
        final.state = await driver.kartu.payment_status(pid)
        if final.drive.flow is Flow.DIRECT_REFUND:
            with contextlib.suppress(KartuError):
                final.refund = await driver.kartu.refund_status(pid)
        final.read_error = None
    except (*RETRYABLE, KartuError) as exc:  # e.g. a query the worker cannot answer
        final.read_error = f"{type(exc).__name__}: {exc}"


async def settle(driver: Driver, finals: list[Final], timeout: float) -> None:
    """Read every payment until all are terminal, or ``timeout`` seconds pass."""
    gate = asyncio.Semaphore(16)
    deadline = time.monotonic() + timeout

    async def read(final: Final) -> None:
        async with gate:
            await read_final(driver, final)

    while True:
        waiting = [f for f in finals if not f.terminal]
        await asyncio.gather(*(read(f) for f in waiting))
        left = [f for f in waiting if not f.terminal]
        if not left or time.monotonic() > deadline:
            return
        await asyncio.sleep(2)


def reconcile(final: Final, ledger: list[dict[str, Any]], report: ChaosReport) -> None:
    """One payment against every ledger entry for its order id."""
    pid = final.drive.payment_id
    ops = [op for entry in ledger for op in entry["operations"]]
    charges = sum(op["operation"] in CHARGES for op in ops)
    refunds = sum(op["operation"] == "REFUND" for op in ops)
    if len(ledger) > 1 or charges > 1:
        report.duplicate_charges += 1
        report.problems.append(f"{pid}: {len(ledger)} ledger payments, {charges} charges")
    if refunds > 1:
        report.duplicate_refunds += 1
        report.problems.append(f"{pid}: {refunds} refunds applied")
    entry = ledger[0] if ledger else None
    ledger_status = entry["status"] if entry else None
    kartu = final.status
    if ledger_status in MONEY_HELD and kartu in ("FAILED", "DECLINED", "VOIDED", "EXPIRED"):
        report.missing_compensations += 1
        report.problems.append(f"{pid}: Kartu {kartu}, ledger {ledger_status}: money not back")
    elif ledger_status == "AUTHORIZED" and final.terminal:
        report.missing_compensations += 1
        report.problems.append(f"{pid}: Kartu {kartu}, ledger still AUTHORIZED")
    mismatch = _mismatch(final, entry)
    if mismatch:
        report.mismatches += 1
        report.problems.append(f"{pid} ({final.drive.flow}): {mismatch}")


def _mismatch(final: Final, entry: dict[str, Any] | None) -> str | None:
    state = final.state
    if state is None:
        return "no workflow state"
    ledger_status = entry["status"] if entry else None
    status = PaymentStatus(final.status)
    if ledger_status not in LEDGER_STATUS.get(status, {"AUTHORIZED"}):
        return f"Kartu {status.value}, ledger {ledger_status}"
    if entry is None:
        return None
    amounts = entry["amounts"]
    if Decimal(amounts["amount"]) != state.amount:
        return f"amount {state.amount} vs ledger {amounts['amount']}"
    captured = state.captured_amount
    if captured is not None and _dec(amounts["captured"]) != captured:
        return f"captured {captured} vs ledger {amounts['captured']}"
    refunded = final.refund.amount if status is PaymentStatus.REFUNDED and final.refund else None
    refunded = refunded if refunded is not None else state.refunded_amount
    if refunded is not None and _dec(amounts["refunded"]) != refunded:
        return f"refunded {refunded} vs ledger {amounts['refunded']}"
    if state.invoice_number is not None and entry["invoiceNumber"] != state.invoice_number:
        return f"invoice {state.invoice_number} vs ledger {entry['invoiceNumber']}"
    return None


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def fault_total(counts: dict[str, dict[str, int]]) -> int:
    return sum(c.get(kind, 0) for c in counts.values() for kind in FAULT_KINDS)


# --- the long outage --------------------------------------------------------------------------


def outage_plan(driven: int, seed: int, run: str) -> list[Drive]:
    """The outage phase's payments: every 3DS flow, in proportion to the driven ones."""
    rng = random.Random(seed + 1)
    count = max(len(OUTAGE_FLOWS), driven // OUTAGE_SHARE)
    return [
        Drive(
            f"chaos_{run}_out{i}",
            OUTAGE_FLOWS[i % len(OUTAGE_FLOWS)],
            Decimal(rng.randrange(10_000, 2_000_000)).quantize(1),
        )
        for i in range(count)
    ]


async def long_outage(
    driver: Driver, control: SandboxControl, drives: list[Drive], report: ChaosReport
) -> None:
    """Payments in their 3DS challenge; then every status and charge call fails for longer than
    their 3DS window and provider poll interval, while their customers pass 3DS. Nobody can ask
    the provider: no payment may decide anything. Then the provider is back."""
    figures = report.outage
    figures.payments = len(drives)
    outcomes = await asyncio.gather(
        *(driver.start_with_short_windows(d) for d in drives), return_exceptions=True
    )
    urls = []
    for d, outcome in zip(drives, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            d.error = f"{type(outcome).__name__}: {outcome}"  # reported with the payment
        elif outcome.status is not PaymentStatus.CHALLENGE or not outcome.authentication_url:
            report.problems.append(f"{d.payment_id}: outage payment began {outcome.status}")
        elif d.flow is not Flow.DIRECT_3DS_ABANDONED:
            urls.append(outcome.authentication_url)
    await control.set_faults(OUTAGE)
    began = time.monotonic()
    log(f"long outage: status and charge APIs down, {len(drives)} payments in 3DS")
    customers = [asyncio.create_task(driver.pass_3ds_later(url)) for url in urls]
    try:
        await _watch_outage(driver, drives, report, began)
    finally:
        await control.set_faults({})
    figures.seconds = round(time.monotonic() - began, 1)
    log(f"long outage over after {figures.seconds} s")
    await asyncio.gather(*customers)


async def _watch_outage(
    driver: Driver, drives: list[Drive], report: ChaosReport, began: float
) -> None:
    """Read every outage payment until each has said PENDING_PROVIDER (or, wrongly, decided)."""
    pending: set[str] = set()
    decided: set[str] = set()
    while True:
        elapsed = time.monotonic() - began
        for d in drives:
            try:
                state = await driver.kartu.payment_status(d.payment_id)
            except (*RETRYABLE, KartuError):
                continue
            if state.status is PaymentStatus.PENDING_PROVIDER:
                pending.add(d.payment_id)
            elif state.status not in AWAITING_PROVIDER and d.payment_id not in decided:
                decided.add(d.payment_id)
                report.problems.append(
                    f"{d.payment_id} ({d.flow}): {state.status} after {elapsed:.1f} s of outage, "
                    "with no provider answer to decide on"
                )
        report.outage.pending_provider = len(pending)
        report.outage.decided_during = len(decided)
        if elapsed >= OUTAGE_MIN_SECONDS and len(pending | decided) == len(drives):
            return
        if elapsed >= OUTAGE_MAX_SECONDS:
            return
        await asyncio.sleep(0.5)


async def settle_outage(
    driver: Driver, drives: list[Drive], report: ChaosReport, settle_timeout: float
) -> list[Final]:
    """The provider answers again: every outage payment decides, holds are captured."""
    begun = time.monotonic()
    await asyncio.gather(*(driver.finish_after_outage(d) for d in drives))
    finals = [Final(d) for d in drives]
    await settle(driver, finals, settle_timeout)
    report.outage.settle_seconds = round(time.monotonic() - begun, 1)
    report.outage.statuses = dict(Counter(f"{f.drive.flow.value}:{f.status}" for f in finals))
    return finals


async def reconcile_with_kartu(client: Client, task_queue: str, report: ChaosReport) -> None:
    """One reconciliation run over the run's payments (what ``kartu reconcile`` runs): every
    difference it finds is a problem of the run."""
    figures = report.reconciliation
    begun = time.monotonic()
    try:
        async with asyncio.timeout(RECONCILE_TIMEOUT):
            result = await run_reconciliation(
                client,
                task_queue=task_queue,
                since=timedelta(hours=1),
                confirm_after=RECONCILE_CONFIRM_AFTER,
            )
    except (WorkflowFailureError, TimeoutError, RPCError) as exc:
        report.problems.append(f"reconciliation did not finish: {type(exc).__name__}: {exc}")
        return
    figures.ran = True
    figures.seconds = round(time.monotonic() - begun, 1)
    figures.checked = result.checked
    figures.agreeing = result.agreeing
    figures.differing = len(result.differing)
    figures.unknown = len(result.unknown_at_provider) + len(result.kartu_unknown)
    figures.in_progress = len(result.in_progress)
    figures.needs_attention = len(result.needs_attention)
    figures.unmatched_callbacks = len(result.unmatched_callbacks)
    for d in result.differing:
        report.problems.append(
            f"reconciliation: {d.payment_id} Kartu {d.kartu_status}, provider "
            f"{d.provider_status}: {'; '.join(d.differences)}"
        )


# --- the run ---------------------------------------------------------------------------------


async def encrypted_cards(control: SandboxControl) -> dict[str, str]:
    key = await control.public_key()
    cards = {}
    for number in (FRICTIONLESS, CHALLENGE, DECLINED):
        card = CardData(
            pan=number, expiryMonth="12", expiryYear="2099", cvv="123", cardholderName="K T"
        )
        cards[number] = encrypt_card(card, key)
    return cards


async def drive_all(
    driver: Driver, drives: list[Drive], concurrency: int, progress: Progress
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(d: Drive) -> None:
        async with gate:
            await driver.run(d)
        progress.tick()

    await asyncio.gather(*(one(d) for d in drives))


async def run_chaos(
    n: int,
    *,
    kills: int,
    seed: int,
    data_dir: Path,
    server_restarts: int = 1,
    concurrency: int = 16,
    settle_timeout: float = 300.0,
    show_progress: bool = True,
    stack_config: dict[str, Any] | None = None,
    pace: Pace | None = None,
    workers: int = 1,
) -> ChaosReport:
    """Start a stack in ``data_dir``, drive ``n`` payments through chaos, then the long outage
    with payments of its own, reconcile (ledger, then Kartu's reconciliation run), stop.
    ``stack_config``: ``StackConfig`` fields for the stack (e.g. its ports); ``pace``: the
    real-time waits (default: the README run's); ``workers``: worker processes on the task
    queue, killed in turn."""
    started = time.monotonic()
    report = ChaosReport(payments=n, seed=seed, kills=kills, server_restarts=server_restarts)
    report.workers.count = workers
    stack = ChaosStack(
        data_dir=data_dir,
        seed=seed,
        config=dict(stack_config or {}),
        pace=pace or Pace(),
        workers=workers,
    )
    try:
        client = await stack.start()
        async with SandboxControl(stack.sandbox_url) as control:
            await _run(stack, client, control, report, concurrency, settle_timeout, show_progress)
    finally:
        if stack.pool is not None:
            stack.pool.cancel()  # here, in the event loop's thread: stop() runs in another
        await asyncio.to_thread(stack.stop)
    report.wall_seconds = round(time.monotonic() - started, 1)
    return report


async def _run(
    stack: ChaosStack,
    client: Client,
    control: SandboxControl,
    report: ChaosReport,
    concurrency: int,
    settle_timeout: float,
    show_progress: bool,
) -> None:
    kartu = KartuClient(client, task_queue=stack.task_queue, outcome_timeout=20)
    driver = Driver(kartu, await encrypted_cards(control), report.seed, stack.pace.challenge_window)
    run = uuid.uuid4().hex[:6]
    drives = plan(report.payments, report.seed, run)
    report.flows = dict(Counter(d.flow.value for d in drives))
    progress = Progress(len(drives), show=show_progress)
    await control.set_faults(CALM)
    driving = asyncio.Event()
    driving.set()
    origin = time.monotonic()
    events = asyncio.create_task(chaos_events(stack, control, report, progress, driving, origin))
    await drive_all(driver, drives, concurrency, progress)
    report.flows_seconds = round(time.monotonic() - origin, 1)
    if report.flows_seconds:
        report.flows_per_s = round(report.payments / report.flows_seconds, 2)
    driving.clear()
    await events  # the events the drive did not reach happen now
    report.drive_seconds = round(time.monotonic() - origin, 1)
    await control.set_faults({})  # faults off; the counters keep counting
    begun = time.monotonic()
    finals = [Final(d) for d in drives]
    await settle(driver, finals, settle_timeout)
    report.settle_seconds = round(time.monotonic() - begun, 1)
    await _failover(stack, drives, origin, report)
    # Once the driven payments are settled (their windows are minutes, not seconds): the long
    # outage, with payments of its own in flight.
    outage_drives = outage_plan(report.payments, report.seed, run)
    await long_outage(driver, control, outage_drives, report)
    finals += await settle_outage(driver, outage_drives, report, settle_timeout)
    await _reconcile_all(control, finals, report)
    await reconcile_with_kartu(client, stack.task_queue, report)
    report.driver_retries = driver.retries
    assert stack.pool is not None
    note_worker_exits(stack.pool, report)


async def _failover(
    stack: ChaosStack, drives: list[Drive], origin: float, report: ChaosReport
) -> None:
    """Once every killed worker's return was seen (long since, by now): the failover figures."""
    assert stack.pool is not None
    await stack.pool.watched()
    note_worker_exits(stack.pool, report)
    for event in report.workers.kills:
        if event.over_s is None:
            report.workers.not_back += 1
            report.problems.append(
                f"worker {event.worker}, killed at {event.at_s:.1f} s, not seen polling again"
            )
    timings = [t for d in drives if (t := d.timing(origin)) is not None]
    report.failover = failover_figures(timings, report.workers.events)


async def _reconcile_all(control: SandboxControl, finals: list[Final], report: ChaosReport) -> None:
    ledger = (await control.ledger())["payments"]
    by_order: dict[str, list[dict[str, Any]]] = {}
    for entry in ledger:
        by_order.setdefault(entry["orderId"], []).append(entry)
    for final in finals:
        if final.terminal:
            report.terminal += 1
        else:
            why = f"; state unreadable: {final.read_error}" if final.read_error else ""
            report.problems.append(f"{final.drive.payment_id}: not terminal ({final.status}){why}")
        reconcile(final, by_order.get(final.drive.payment_id, []), report)
        if final.drive.error:
            report.problems.append(f"{final.drive.payment_id}: driver saw {final.drive.error}")
    report.statuses = dict(Counter(f"{f.drive.flow.value}:{f.status}" for f in finals))
    report.waited_for_provider = sum(
        f.state is not None
        and any(t.to_status == PaymentStatus.PENDING_PROVIDER for t in f.state.history)
        for f in finals
    )
    counts = (await control.faults())["counts"]
    report.fault_counts = counts
    report.faults_injected = fault_total(counts)


# --- CLI -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="payments to drive (default 100)")
    parser.add_argument("--kills", type=int, default=3, help="worker SIGKILLs (default 3)")
    parser.add_argument("--server-restarts", type=int, default=1, help="dev server restarts")
    parser.add_argument("--concurrency", type=int, default=16, help="payments in flight (16)")
    parser.add_argument("--seed", type=int, default=7, help="flows, amounts and fault rates")
    parser.add_argument("--settle-timeout", type=float, default=600.0, help="seconds (600)")
    parser.add_argument("--data-dir", type=Path, help="stack data (default: a temporary dir)")
    parser.add_argument("--output", type=Path, help="JSON file for the figures")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes, killed in turn (default 1)"
    )
    parser.add_argument(
        "--worker-series",
        metavar="N,N,...",
        help="one run per worker count (e.g. 1,2,3), each on a fresh stack: flows/s and the "
        "pass line per count",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.worker_series is not None:
        if args.workers != 1:
            parser.error("give --workers or --worker-series, not both")
        try:
            args.worker_series = worker_series(args.worker_series)
        except ValueError as exc:
            parser.error(f"--worker-series: {exc}")
    return args


async def chaos_once(args: argparse.Namespace, workers: int, data_dir: Path | None) -> ChaosReport:
    """One run on a fresh stack (in ``data_dir``, else a temporary directory)."""
    with contextlib.ExitStack() as cleanup:
        if data_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="kartu-chaos-", ignore_cleanup_errors=True)
            data_dir = Path(cleanup.enter_context(tmp))
        return await run_chaos(
            args.n,
            kills=args.kills,
            seed=args.seed,
            data_dir=data_dir,
            server_restarts=args.server_restarts,
            concurrency=args.concurrency,
            settle_timeout=args.settle_timeout,
            workers=workers,
        )


def show(report: ChaosReport) -> None:
    print("\n".join(report.lines()))
    for problem in report.problems[:30]:
        print(f"  ! {problem}")


def series_lines(reports: Sequence[ChaosReport]) -> list[str]:
    """One line per worker count: flows/s, the failover delay, and the pass line."""
    lines = []
    for r in reports:
        extra = r.failover.extra_p99_s
        delay = "n/a" if extra is None else f"{extra:.2f} s"
        lines.append(
            f"{r.workers.count} worker(s)  {r.flows_per_s:6.2f} flows/s  failover extra p99 "
            f"{delay}  | {r.pass_line()}"
        )
    return lines


def write_json(path: Path, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {path}")


async def amain(args: argparse.Namespace) -> bool:
    """The run (or the series of runs); True when every run passed."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    if args.worker_series is None:
        report = await chaos_once(args, args.workers, args.data_dir)
        show(report)
        name = f"chaos-{args.n}-{stamp}.json"
        if args.workers != 1:
            name = f"chaos-{args.n}-w{args.workers}-{stamp}.json"
        write_json(args.output or RESULTS / name, report.to_json())
        return report.passed
    # A fresh stack per worker count: every run's pass line stands alone (its own ledger and
    # reconciliation), and no count inherits another's history, backlog or grown SQLite file.
    reports = []
    for count in args.worker_series:
        log(f"worker series: {args.n} payments with {count} worker(s)")
        data_dir = None if args.data_dir is None else args.data_dir / f"workers-{count}"
        report = await chaos_once(args, count, data_dir)
        show(report)
        reports.append(report)
    print("\n".join(series_lines(reports)))
    passed = all(r.passed for r in reports)
    series = "-".join(str(c) for c in args.worker_series)
    out = args.output or RESULTS / f"chaos-{args.n}-series{series}-{stamp}.json"
    write_json(out, {"worker_series": [r.to_json() for r in reports], "passed": passed})
    return passed


def main(argv: list[str] | None = None) -> int:
    return 0 if asyncio.run(amain(parse_args(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())
