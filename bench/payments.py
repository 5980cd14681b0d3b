"""Kartu against its floor, in the same run on the same server.

Drives N direct and N auth-capture payments (frictionless test card, sandbox latency 0) with a
chosen number in flight, then as many bare workflows with the same count of no-op activities
(the floor). Prints payments/s, p50 and p99 for each and the ratio Kartu / floor, and writes
the figures to a JSON file.

    kartu up                      # in another terminal
    .venv/bin/python -m bench.payments -n 200 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from sandbox.control_client import SandboxControl
from sandbox.customer import register_card
from starter.client import KartuClient

from .floor import FLOOR_TASK_QUEUE, FloorWorkflow

FRICTIONLESS_CARD = "4111111111111111"
RESULTS = Path(__file__).parent / "results"


@dataclass
class Series:
    name: str
    activities_per_flow: int = 0
    first_answer_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    failures: int = 0

    def summary(self) -> dict[str, float | int | str]:
        def pct(values: list[float], q: float) -> float:
            if not values:
                return float("nan")
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        done = len(self.complete_ms)
        return {
            "name": self.name,
            "flows": done,
            "failures": self.failures,
            "activities_per_flow": self.activities_per_flow,
            "per_second": round(done / self.wall_seconds, 1) if self.wall_seconds else 0.0,
            "first_answer_p50_ms": round(pct(self.first_answer_ms, 0.50), 1),
            "first_answer_p99_ms": round(pct(self.first_answer_ms, 0.99), 1),
            "complete_p50_ms": round(pct(self.complete_ms, 0.50), 1),
            "complete_p99_ms": round(pct(self.complete_ms, 0.99), 1),
            "complete_mean_ms": round(statistics.fmean(self.complete_ms), 1) if done else 0.0,
        }


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def tick(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = int(width * self.done / self.total)
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        bar = "#" * filled + "." * (width - filled)
        sys.stderr.write(f"\r{label:<14} [{bar}] {self.done}/{self.total} {rate:6.1f}/s")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


async def run_series(
    series: Series,
    n: int,
    concurrency: int,
    flow: Callable[[int], Awaitable[float]],
    warmup: int = 0,
) -> None:
    # Warm-up flows (ids after the measured ones) are not counted: the first flows of a worker
    # pay for loading workflow code and opening connections.
    gate = asyncio.Semaphore(concurrency)

    async def unmeasured(i: int) -> None:
        async with gate:
            await flow(i)

    await asyncio.gather(*(unmeasured(n + i) for i in range(warmup)))
    progress = Progress(n)

    async def one(i: int) -> None:
        async with gate:
            started = time.monotonic()
            try:
                first = await flow(i)
            except Exception as exc:  # a failed flow is counted, the run goes on
                series.failures += 1
                print(f"\n{series.name} #{i} failed: {exc}", file=sys.stderr)
            else:
                series.first_answer_ms.append(first * 1000)
                series.complete_ms.append((time.monotonic() - started) * 1000)
            progress.tick(series.name)

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    series.wall_seconds = time.monotonic() - started


async def activity_count(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    return sum(1 for event in history.events if event.event_type == scheduled)


async def bound_card(kartu: KartuClient, run: str) -> tuple[str, str]:
    started = await kartu.register_card(
        f"bench_{run}",
        name="Bench Customer",
        email="bench@example.com",
        phone_number="628111111111",
        redirect_url="https://merchant.example/registered",
    )
    await register_card(started.webview.url, card_number=FRICTIONLESS_CARD)
    state = await kartu.wait_registration(f"bench_{run}", timeout=30)
    if not state.card_token or not state.customer_id:
        raise RuntimeError(f"card registration ended {state.status}: {state}")
    return state.card_token, state.customer_id


async def main(args: argparse.Namespace) -> dict[str, object]:
    kartu = await KartuClient.connect()
    client = kartu.temporal
    async with SandboxControl(args.sandbox) as control:
        await control.clear_faults()
    run = uuid.uuid4().hex[:8]
    token, customer = await bound_card(kartu, run)
    common = {
        "customer_id": customer,
        "card_token": token,
        "redirect_url": "https://merchant.example/return",
    }

    async def direct(i: int) -> float:
        started = time.monotonic()
        outcome = await kartu.pay(f"bd_{run}_{i}", amount="150000", **common)
        first = time.monotonic() - started
        if outcome.status.value != "PAID":
            raise RuntimeError(f"direct payment ended {outcome.status}")
        await client.get_workflow_handle(outcome.workflow_id).result()
        return first

    async def auth_capture(i: int) -> float:
        started = time.monotonic()
        outcome = await kartu.authorize(f"ba_{run}_{i}", amount="150000", **common)
        first = time.monotonic() - started
        if outcome.status.value != "AUTHORIZED":
            raise RuntimeError(f"authorization ended {outcome.status}")
        await kartu.capture(f"ba_{run}_{i}")
        await client.get_workflow_handle(outcome.workflow_id).result()
        return first

    direct_series = Series("kartu-direct")
    auth_series = Series("kartu-auth-cap")
    await run_series(direct_series, args.n, args.concurrency, direct, args.warmup)
    await run_series(auth_series, args.n, args.concurrency, auth_capture, args.warmup)
    direct_series.activities_per_flow = await activity_count(client, f"payment-bd_{run}_0")
    auth_series.activities_per_flow = await activity_count(client, f"payment-ba_{run}_0")

    floor_worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.floor", stdout=asyncio.subprocess.PIPE, env=os.environ.copy()
    )
    try:
        assert floor_worker.stdout is not None
        await floor_worker.stdout.readline()  # "floor worker ready"
        floors = []
        for kartu_series in (direct_series, auth_series):
            floor = Series(f"floor-{kartu_series.activities_per_flow}-act")
            floor.activities_per_flow = kartu_series.activities_per_flow

            async def bare(i: int, floor: Series = floor) -> float:
                started = time.monotonic()
                start = WithStartWorkflowOperation(
                    FloorWorkflow.run,
                    floor.activities_per_flow,
                    id=f"bench-floor-{run}-{floor.activities_per_flow}-{i}",
                    task_queue=FLOOR_TASK_QUEUE,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
                await client.execute_update_with_start_workflow(
                    FloorWorkflow.first_outcome, start_workflow_operation=start
                )
                first = time.monotonic() - started
                await (await start.workflow_handle()).result()
                return first

            await run_series(floor, args.n, args.concurrency, bare, args.warmup)
            floors.append(floor)
    finally:
        floor_worker.terminate()
        await floor_worker.wait()

    rows = [s.summary() for s in (direct_series, floors[0], auth_series, floors[1])]
    ratios = {
        "direct": rows[0]["per_second"] / rows[1]["per_second"] if rows[1]["per_second"] else 0,
        "auth_capture": rows[2]["per_second"] / rows[3]["per_second"]
        if rows[3]["per_second"]
        else 0,
    }
    report: dict[str, object] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n": args.n,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "series": rows,
        "kartu_over_floor": {k: round(v, 2) for k, v in ratios.items()},
    }
    print_table(rows, report["kartu_over_floor"])  # type: ignore[arg-type]
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.output) if args.output else RESULTS / f"payments-{run}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"figures written to {out}")
    return report


def print_table(rows: list[dict[str, float | int | str]], ratios: dict[str, float]) -> None:
    header = f"{'series':<16}{'acts':>5}{'flows/s':>9}{'first p50':>11}{'first p99':>11}"
    header += f"{'done p50':>10}{'done p99':>10}{'fail':>6}"
    print(header)
    for row in rows:
        print(
            f"{row['name']:<16}{row['activities_per_flow']:>5}{row['per_second']:>9}"
            f"{row['first_answer_p50_ms']:>11}{row['first_answer_p99_ms']:>11}"
            f"{row['complete_p50_ms']:>10}{row['complete_p99_ms']:>10}{row['failures']:>6}"
        )
    print(
        f"Kartu / floor (flows/s): direct {ratios['direct']:.2f}, "
        f"auth-capture {ratios['auth_capture']:.2f}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="flows per series (default 100)")
    parser.add_argument("--concurrency", type=int, default=10, help="flows in flight (10)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured flows first (10)")
    parser.add_argument("--sandbox", default="http://127.0.0.1:8090", help="sandbox base URL")
    parser.add_argument("--output", help="JSON file for the figures")
    args = parser.parse_args(argv)
    if args.n < 1 or args.concurrency < 1:
        parser.error("-n and --concurrency must be at least 1")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
