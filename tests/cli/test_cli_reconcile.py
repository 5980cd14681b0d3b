"""``kartu reconcile`` against ``kartu up``: a clean run agrees; a refund made at the sandbox
behind Kartu's back is reported and raised (a review ops find with the NEEDS_ATTENTION search)
while the other payments agree; ``--schedule`` updates the schedule ``kartu up`` created; bad
input is one line, exit 2, and changes nothing."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cli_stack import RegisteredCard, Up, new_id
from temporalio.client import Client, ScheduleIntervalSpec
from test_cli_errors import assert_one_line_error

from ayoconnect import AyoconnectClient, AyoconnectSettings
from ayoconnect.models import RefundRequest
from codec import KartuCodec, data_converter, load_or_create_local_keys
from starter.binaries import temporal_cli
from workflows import search_attributes as sa
from workflows.reconciliation_models import SCHEDULE_ID, ReviewState, ReviewStatus


def eventually(read: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def pay(up: Up, command: str, payment: str, card: RegisteredCard) -> dict[str, Any]:
    args = [command, payment, "--customer", card.customer_id, "--amount", "150000"]
    return up.kartu(*args, "--card-token", card.token, "--json").json()


async def temporal(up: Up) -> Client:
    codec = KartuCodec(load_or_create_local_keys(Path(up.ready["codec_keys_file"])))
    return await Client.connect(
        up.ready["temporal"]["address"], data_converter=data_converter(codec)
    )


async def refund_at_the_sandbox(up: Up, customer_id: str, invoice: str, amount: str) -> str:
    """What the provider's dashboard or another system would do: Kartu is not told."""
    settings = AyoconnectSettings(base_url=up.ready["sandbox"])
    async with AyoconnectClient(settings) as provider:
        answer = await provider.refund(
            RefundRequest(
                transactionId=new_id("elsewhere")[:32],
                customerId=customer_id,
                invoiceNumber=invoice,
                amount=Decimal(amount),
                reason="refunded from the dashboard",
            ),
            correlation_id="0" * 32,
        )
    return answer.status.value


async def review_search(up: Up, review_id: str) -> tuple[str | None, list[str]]:
    """The review's status attribute, and what the one NEEDS_ATTENTION search finds."""
    client = await temporal(up)
    described = await client.get_workflow_handle(review_id).describe()
    query = f"{sa.PAYMENT_STATUS.name} = 'NEEDS_ATTENTION'"
    for _ in range(50):
        found = [e.id async for e in client.list_workflows(query)]
        if review_id in found:
            break
        await asyncio.sleep(0.2)
    return described.typed_search_attributes.get(sa.PAYMENT_STATUS), found


async def review_result(up: Up, review_id: str) -> ReviewState:
    client = await temporal(up)
    handle = client.get_workflow_handle(review_id, result_type=ReviewState)
    async with asyncio.timeout(20):
        return await handle.result()


def test_reconcile_reports_and_raises_a_refund_made_behind_kartus_back(
    kartu_up: Up, card: RegisteredCard
) -> None:
    paid = [new_id("rp") for _ in range(2)]
    for payment in paid:
        assert pay(kartu_up, "pay", payment, card)["status"] == "PAID"
    held = new_id("rc")
    assert pay(kartu_up, "authorize", held, card)["status"] == "AUTHORIZED"
    assert kartu_up.kartu("capture", held, "--json").json()["status"] == "CAPTURED"
    mine = {*paid, held}
    listed = eventually(
        lambda: {p["payment_id"] for p in kartu_up.kartu("payments", "--json").json()},
        lambda ids: mine <= ids,
    )
    assert mine <= listed

    clean = kartu_up.kartu("reconcile", "--since", "1h", "--json", timeout=180).json()
    assert clean["differing"] == [], clean["differing"]
    assert clean["checked"] >= 3 and clean["agreeing"] >= 3
    elsewhere = clean["unknown_at_provider"] + clean["kartu_unknown"] + clean["in_progress"]
    assert not mine & set(elsewhere + clean["needs_attention"])
    assert clean["reconciliation_id"].startswith("reconcile-")

    state = kartu_up.kartu("status", paid[0], "--json").json()
    refunded = asyncio.run(
        refund_at_the_sandbox(kartu_up, card.customer_id, state["invoice_number"], state["amount"])
    )
    assert refunded == "REFUNDED"

    args = ["reconcile", "--since", "1h", "--confirm-after", "2s"]
    report = kartu_up.kartu(*args, "--json", timeout=180).json()
    assert [d["payment_id"] for d in report["differing"]] == [paid[0]]
    [difference] = report["differing"]
    assert difference["differences"] == [
        "a refund Kartu does not know of: Kartu says PAID, the provider says REFUNDED"
    ]
    assert (difference["kartu_status"], difference["provider_status"]) == ("PAID", "REFUNDED")
    review_id = f"review-{paid[0]}"
    assert difference["raised"] == f"review {review_id} (NEEDS_ATTENTION)"
    assert report["checked"] >= 3 and report["agreeing"] >= 2
    # Raised, never corrected: the payment still reads PAID, the review waits for ops.
    assert kartu_up.kartu("status", paid[0], "--json").json()["status"] == "PAID"
    status, found = asyncio.run(review_search(kartu_up, review_id))
    assert status == "NEEDS_ATTENTION" and review_id in found

    human = kartu_up.kartu(*args, timeout=180)
    assert human.code == 0, human.err
    for words in ("checked", "agreeing", "differing", "unknown at provider", "differences:"):
        assert words in human.out, words
    assert paid[0] in human.out and review_id in human.out

    # Ops close the review with the README's command; the same difference is not raised again.
    resolve = '{"action": "close", "status": "REFUNDED", "note": "dashboard refund, ticket 42"}'
    signal = ["workflow", "signal", "--workflow-id", review_id, "--name", "resolve"]
    done = subprocess.run(  # noqa: S603 - the temporal CLI from the environment
        [str(temporal_cli()), *signal, "--input", resolve],
        env=kartu_up.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    resolved = asyncio.run(review_result(kartu_up, review_id))
    assert resolved.status is ReviewStatus.RESOLVED
    assert resolved.resolution is not None and resolved.resolution.note.endswith("ticket 42")
    after = kartu_up.kartu(*args, "--json", timeout=180).json()
    [again] = after["differing"]
    assert again["raised"] == f"resolved by ops in {review_id}: not raised again"


def test_up_created_the_schedule_and_the_command_updates_it(kartu_up: Up) -> None:
    async def interval() -> timedelta:
        client = await temporal(kartu_up)
        described = await client.get_schedule_handle(SCHEDULE_ID).describe()
        spec = described.schedule.spec.intervals[0]
        assert isinstance(spec, ScheduleIntervalSpec)
        return spec.every

    assert asyncio.run(interval()) == timedelta(hours=1)  # made by `kartu up`
    args = ["reconcile", "--schedule", "--every", "2h", "--since", "24h", "--json"]
    updated = kartu_up.kartu(*args).json()
    assert updated["schedule_id"] == SCHEDULE_ID and updated["action"] == "updated"
    assert (updated["every"], updated["since"]) == ("PT2H", "P1D")  # ISO 8601 durations
    assert asyncio.run(interval()) == timedelta(hours=2)
    back = kartu_up.kartu("reconcile", "--schedule").out
    assert "kartu-reconciliation (updated)" in back and "every" in back and "1h" in back
    assert asyncio.run(interval()) == timedelta(hours=1)


def test_bad_reconcile_input_is_one_line_and_changes_nothing(kartu_up: Up) -> None:
    for args, words in (
        (["reconcile", "--since", "banana"], ["--since", "'banana' is not a duration"]),
        (["reconcile", "--since", "100d"], ["--since", "at most 90 days"]),
        (["reconcile", "--schedule", "--every", "10s"], ["--every", "at most every minute"]),
        (["reconcile", "--every", "2h"], ["--every needs --schedule"]),
    ):
        assert_one_line_error(kartu_up.kartu(*args), 2, *words)

    async def unchanged() -> tuple[timedelta, list[str]]:
        client = await temporal(kartu_up)
        described = await client.get_schedule_handle(SCHEDULE_ID).describe()
        # Started by `kartu reconcile` (the schedule's own runs are kartu-reconciliation-<time>).
        query = "WorkflowType = 'Reconciliation' AND ExecutionStatus = 'Running'"
        running = [
            e.id async for e in client.list_workflows(query) if e.id.startswith("reconcile-")
        ]
        return described.schedule.spec.intervals[0].every, running

    every, running = asyncio.run(unchanged())
    assert every == timedelta(hours=1) and running == []
