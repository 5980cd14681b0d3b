"""Upgrades with payments in flight: an authorization is held for up to 7 days, so a deploy
always finds auth-capture payments open. They must finish on the new code as they began.

Tomorrow's ``AuthCapturePayment`` is defined here, following ``workflows/versions.py``: it adds a
step where the hold begins (a status look-up confirming the hold at the provider) behind
``workflow.patched(HOLD_CHECK_202612)``. A payment is authorized on today's worker, that worker
stops, and a worker running tomorrow's code on the same task queue picks the payment up: it
replays the old history (no patch marker: the old path, no look-up) and captures or expires it.
A payment started on the new worker takes the new path. The same change without the guard does
not replay the old history: that is what the guard is for.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from workflows import ALL_WORKFLOWS, AuthCapturePaymentWorkflow, versions

with workflow.unsafe.imports_passed_through():
    # The workflows below are imported again inside the worker's sandbox: what this module
    # imports besides them is passed through, not re-imported there.
    import pytest
    from temporalio.testing import WorkflowEnvironment
    from workflow_fakes import FakeAyoconnect
    from workflow_helpers import finish, payment_input, start_payment

    from ayoconnect.models import PaymentStatus as Wire
    from worker import workflow_runner
    from workflows.models import ActionResult, CaptureCommand, PaymentInput, PaymentState
    from workflows.models import PaymentStatus as K

# Step 1 of the procedure in workflows/versions.py: the change has a name.
HOLD_CHECK_202612 = "auth-capture-hold-check-202612"
# Where the SDK records a patch id in its marker event (``core_patch``, details ``patch-data``).
PATCH_DETAILS = "patch-data"


@workflow.defn(name="AuthCapturePayment")
class AuthCaptureWithHoldCheck(AuthCapturePaymentWorkflow):
    """Tomorrow's auth-capture: before the hold's durable wait, the provider is asked whether
    it still holds the authorization (a hold it already released is then seen at once)."""

    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentState:
        async with self._compensated_if_cancelled():
            await self._charge()
            if await self._kept_after_deadline():
                await self._confirm_with_merchant()
                await self._checked_hold()
        return self.core.state

    async def _checked_hold(self) -> None:
        # Step 2: branch where the command sequence changes. Decided where the hold begins,
        # so a payment that was already holding when this code was deployed never takes it.
        if versions.changed(HOLD_CHECK_202612):
            await confirm_hold(self)
        await self._hold_authorization()


@workflow.defn(name="AuthCapturePayment")
class AuthCaptureWithUnguardedHoldCheck(AuthCapturePaymentWorkflow):
    """The same change, shipped without the guard."""

    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentState:
        async with self._compensated_if_cancelled():
            await self._charge()
            if await self._kept_after_deadline():
                await self._confirm_with_merchant()
                await self._checked_hold()
        return self.core.state

    async def _checked_hold(self) -> None:
        await confirm_hold(self)
        await self._hold_authorization()


async def confirm_hold(wf: AuthCapturePaymentWorkflow) -> None:
    core = wf.core
    if core.status is not K.AUTHORIZED:
        return
    async with core.lock:
        detail = await core.confirm()
    if detail is not None and detail.status is not Wire.AUTHORIZED:
        core.progress.provider_void_hint = True  # the hold loop confirms it and records it


def with_version(changed: type) -> list[type]:
    return [changed if w is AuthCapturePaymentWorkflow else w for w in ALL_WORKFLOWS]


def deployed_worker(
    env: WorkflowEnvironment, fake: FakeAyoconnect, task_queue: str, workflows: list[type]
) -> Worker:
    """A worker as ``build_worker`` makes it (sandboxed, these workflows, the fake provider's
    activities), without a workflow cache: the time-skipping test server never moves a workflow
    task off the sticky queue of a worker that stopped (a real server does, after the sticky
    schedule-to-start timeout), so every task goes to the task queue and is replayed there."""
    return Worker(
        env.client,
        task_queue=task_queue,
        workflows=workflows,
        activities=fake.all(),
        workflow_runner=workflow_runner(),
        max_cached_workflows=0,
    )


def todays_worker(env: WorkflowEnvironment, fake: FakeAyoconnect, task_queue: str) -> Worker:
    return deployed_worker(env, fake, task_queue, ALL_WORKFLOWS)


def tomorrows_worker(env: WorkflowEnvironment, fake: FakeAyoconnect, task_queue: str) -> Worker:
    """The next deploy: the changed ``AuthCapturePayment`` (same name, same task queue)."""
    return deployed_worker(env, fake, task_queue, with_version(AuthCaptureWithHoldCheck))


def replayer(changed: type) -> Replayer:
    return Replayer(
        workflows=with_version(changed),
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )


def patches(history: WorkflowHistory) -> list[str]:
    """The patch ids whose marker the history carries (the new paths its execution took)."""
    found = []
    for event in history.events:
        if not event.HasField("marker_recorded_event_attributes"):
            continue
        marker = event.marker_recorded_event_attributes
        for payload in marker.details[PATCH_DETAILS].payloads:
            found.append(json.loads(payload.data)["id"])
    return found


def has_patch(history: WorkflowHistory) -> bool:
    return HOLD_CHECK_202612 in patches(history)


def status_checks(fake: FakeAyoconnect, key: str) -> list[Any]:
    """Every status look-up this payment made (the hold check is one)."""
    return [
        arg
        for name, arg in fake.calls
        if name == "payment_status" and key in (arg.invoice_number or arg.original_transaction_id)
    ]


async def authorize(env: WorkflowEnvironment, task_queue: str, key: str) -> WorkflowHandle:
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key, "100000.00"), auth_capture=True
    )
    assert outcome.status is K.AUTHORIZED
    return handle


async def capture(handle: WorkflowHandle) -> ActionResult:
    return await handle.execute_update(
        "capture_payment", CaptureCommand(requested_by="ops"), result_type=ActionResult
    )


@pytest.fixture
def queue(env: WorkflowEnvironment, fake: FakeAyoconnect) -> str:
    """A task queue of this test's own: the workers on it start and stop as a deploy does."""
    fake.client = env.client
    return f"kartu-deploy-{uuid.uuid4().hex[:8]}"


def key() -> str:
    return "v_" + uuid.uuid4().hex[:20]


async def test_payment_started_on_todays_code_finishes_on_the_changed_version(
    env: WorkflowEnvironment, fake: FakeAyoconnect, queue: str
):
    to_capture, to_expire = key(), key()
    # Today's worker authorizes two payments; then the deploy stops it.
    async with todays_worker(env, fake, queue):
        old_capture = await authorize(env, queue, to_capture)
        old_expire = await authorize(env, queue, to_expire)
    old_history = await old_capture.fetch_history()
    assert not has_patch(old_history)
    looked_up = len(status_checks(fake, to_capture))

    async with tomorrows_worker(env, fake, queue):
        # The old executions replay on the new code: the old path, no hold check...
        result = await capture(old_capture)
        assert (result.outcome, result.amount) == ("captured", Decimal("100000.00"))
        captured: PaymentState = await finish(env, old_capture)
        assert captured.status is K.CAPTURED
        assert len(status_checks(fake, to_capture)) == looked_up
        assert not has_patch(await old_capture.fetch_history())

        # ... while a payment started on the new worker takes the new path.
        fresh = key()
        new_handle = await authorize(env, queue, fresh)
        assert (await capture(new_handle)).outcome == "captured"
        assert (await finish(env, new_handle)).status is K.CAPTURED
        assert len(status_checks(fake, fresh)) == 1  # the hold check
        assert has_patch(await new_handle.fetch_history())

        # The other old payment is held to the end of its window, on the new code too.
        expired: PaymentState = await finish(env, old_expire)
        assert expired.status is K.EXPIRED
        held = expired.history[-1].at - next(
            t.at for t in expired.history if t.to_status == "AUTHORIZED"
        )
        assert held >= timedelta(days=7) - timedelta(seconds=1)
        [void] = fake.calls_of("void", to_expire)
        assert void.request.transactionId == f"{to_expire}-cv"
        assert not has_patch(await old_expire.fetch_history())
        assert fake.payments[f"INV-{to_expire}-auth"].status is Wire.VOIDED

    # Every history of the deploy replays on the guarded version: old ones on the old path,
    # the new one on the new path.
    for handle in (old_capture, old_expire, new_handle):
        history = await handle.fetch_history()
        outcome = await replayer(AuthCaptureWithHoldCheck).replay_workflow(
            history, raise_on_replay_failure=False
        )
        assert outcome.replay_failure is None, (handle.id, outcome.replay_failure)

    # Without the guard (or with the old branch removed too early: step 4), the old payment's
    # history does not replay: the code schedules the hold check where the history holds the
    # authorization window's timer.
    unguarded = await replayer(AuthCaptureWithUnguardedHoldCheck).replay_workflow(
        await old_capture.fetch_history(), raise_on_replay_failure=False
    )
    assert unguarded.replay_failure is not None
    assert "Nondeterminism" in str(unguarded.replay_failure)
    # ... not even the history recorded while it was only authorized (before the deploy).
    unguarded = await replayer(AuthCaptureWithUnguardedHoldCheck).replay_workflow(
        old_history, raise_on_replay_failure=False
    )
    assert unguarded.replay_failure is not None


async def test_rollback_replays_the_old_path_only(
    env: WorkflowEnvironment, fake: FakeAyoconnect, queue: str
):
    """Rolling back to today's code is safe for payments that took the old path (no patch
    marker in their history), not for those that took the new one: a rollback must wait until
    no new-path payment is open, or keep the branch."""
    async with todays_worker(env, fake, queue):
        old_path = await authorize(env, queue, key())
    async with tomorrows_worker(env, fake, queue):
        new_path = await authorize(env, queue, key())
        # Both captured before either result is awaited: awaiting one lets the test server
        # skip time, and a payment still held would be expired by the jump.
        for handle in (old_path, new_path):
            assert (await capture(handle)).outcome == "captured"
        for handle in (old_path, new_path):
            assert (await finish(env, handle)).status is K.CAPTURED
    today = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    old = await today.replay_workflow(await old_path.fetch_history(), raise_on_replay_failure=False)
    assert old.replay_failure is None, old.replay_failure
    new = await today.replay_workflow(await new_path.fetch_history(), raise_on_replay_failure=False)
    assert new.replay_failure is not None
