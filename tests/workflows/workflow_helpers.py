"""Starting and observing Kartu workflows the way a backend does (update-with-start)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from workflow_fakes import CARD_TOKEN, FakeAyoconnect

from worker import WorkerSettings, build_worker
from workflows import AuthCapturePaymentWorkflow, DirectPaymentWorkflow
from workflows.ids import payment_workflow_id
from workflows.models import PaymentInput, PaymentOutcome, PaymentRequestSummary, PaymentState


def new_queue(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def fake_worker(
    env: WorkflowEnvironment, fake: FakeAyoconnect, task_queue: str, **options: Any
) -> Worker:
    """The Kartu worker (``build_worker``) on ``fake``'s activities, on ``env``'s server;
    ``options`` go to ``build_worker`` (e.g. ``extra_activities``)."""
    fake.client = env.client
    return build_worker(
        env.client,
        WorkerSettings(),
        None,
        activities=fake.all(),
        task_queue=task_queue,
        **options,
    )


@asynccontextmanager
async def own_worker(
    env: WorkflowEnvironment, fake: FakeAyoconnect, prefix: str
) -> AsyncIterator[str]:
    """Runs a Kartu worker on ``fake``'s activities and a new task queue, yields the queue's
    name, stops the worker on exit: for a module or test with a server of its own (the
    session's workers stay to its end)."""
    queue = new_queue(prefix)
    async with fake_worker(env, fake, queue):
        yield queue


HISTORIES = Path(__file__).parent / "histories"
CUSTOMER = "CUST000123"


def payment_input(key: str, amount: str = "150000.00", **overrides: Any) -> PaymentInput:
    fields: dict[str, Any] = {
        "payment_id": key,
        "customer_id": CUSTOMER,
        "amount": Decimal(amount),
        "description": "test order",
        "card_token": CARD_TOKEN,
        "redirect_url": "https://merchant.test/return",
    }
    fields.update(overrides)
    return PaymentInput(**fields)


async def start_payment(
    client: Client,
    task_queue: str,
    payment: PaymentInput,
    *,
    auth_capture: bool = False,
    summary: PaymentRequestSummary | None = None,
) -> tuple[PaymentOutcome, WorkflowHandle]:
    """Update-with-start with early return: one round trip, the payment's first outcome.
    ``summary`` is passed to ``first_outcome`` (its optional idempotency check)."""
    workflow = AuthCapturePaymentWorkflow if auth_capture else DirectPaymentWorkflow
    operation = WithStartWorkflowOperation(
        workflow.run,
        payment,
        id=payment_workflow_id(payment.payment_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    if summary is None:
        outcome = await client.execute_update_with_start_workflow(
            workflow.first_outcome, start_workflow_operation=operation
        )
    else:
        outcome = await client.execute_update_with_start_workflow(
            workflow.first_outcome, summary, start_workflow_operation=operation
        )
    return outcome, await operation.workflow_handle()


async def start_in_background(
    env: Any, task_queue: str, payment: PaymentInput, *, auth_capture: bool = False
) -> WorkflowHandle:
    """A plain start (no early return): for payments whose first outcome takes skipped time
    (activity retries on a backoff); ``result()`` on this handle skips time by itself."""
    workflow = AuthCapturePaymentWorkflow if auth_capture else DirectPaymentWorkflow
    return await env.client.start_workflow(
        workflow.run,
        payment,
        id=payment_workflow_id(payment.payment_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def wait_skipping(
    env: Any, handle: WorkflowHandle, seconds: float, predicate: Callable[[Any], bool]
) -> Any:
    """Skip ``seconds`` of server time (activity retries, timers), then ``wait_for``.

    Never wait with skipping unlocked on a workflow that then waits for a signal: with nothing
    scheduled the test server jumps to its 10-year execution timeout and the workflow dies."""
    await env.sleep(seconds)
    return await wait_for(handle, predicate)


async def update_skipping(
    env: Any, handle: WorkflowHandle, update: str, arg: Any, result_type: type, seconds: float
) -> Any:
    """An update whose handler waits on activity retries or timers: sent with the clock locked
    (the validator's refusal comes back at once), then ``seconds`` of server time skipped, then
    its result, which must be there by then.

    Not ``execute_update`` inside ``time_skipping_unlocked``: that lets the clock run free
    until the client locks it again, and a payment that keeps asking the provider every hour
    goes through days of look-ups meanwhile; a CI run under load saw such a test's update fail
    and the test hang there for 3 minutes. A bounded skip ends where it ends, however slow the
    machine (the server never skips while an activity or workflow task is in flight)."""
    try:
        sent = await handle.start_update(
            update, arg, wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=result_type
        )
        await env.sleep(seconds)
        return await asyncio.wait_for(sent.result(), timeout=30)
    except WorkflowUpdateFailedError as err:
        raise AssertionError(f"update {update} failed: {err.cause!r}") from err


async def state_of(handle: WorkflowHandle) -> PaymentState:
    return await handle.query("state", result_type=PaymentState)


async def wait_for(
    handle: WorkflowHandle,
    predicate: Callable[[Any], bool],
    result_type: type = PaymentState,
    timeout: float = 10.0,
) -> Any:
    """Poll the state query (real time: the test server does not skip time here)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await handle.query("state", result_type=result_type)
        if predicate(state):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"state never matched: {state!r}")
        await asyncio.sleep(0.05)


async def save_history(handle: WorkflowHandle, name: str) -> None:
    """Keep a representative history for the replay test. Written once (or again with
    KARTU_RECORD_HISTORIES=1): a committed history is what today's code must still replay."""
    path = HISTORIES / f"{name}.json"
    if path.exists() and os.environ.get("KARTU_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


async def finish(env: Any, handle: WorkflowHandle) -> Any:
    """``handle.result()`` with the test server's clock skipping ahead while it waits.

    The time-skipping environment only does this by itself for handles from
    ``start_workflow``; update-with-start handles need it asked for."""
    if getattr(handle, "env", None) is env:
        return await handle.result()  # a start_workflow handle: it unlocks by itself
    async with env.time_skipping_unlocked():
        return await handle.result()
