"""Refund (once per payment, full only) and unbind."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from workflow_fakes import CARD_TOKEN, final_error, transient_error
from workflow_helpers import CUSTOMER, finish, payment_input, save_history, start_payment, wait_for

from ayoconnect.codes import GatewayCode, ServiceCode
from workflows import CardUnbindWorkflow, RefundWorkflow, policies
from workflows.ids import card_key, payment_correlation_id, refund_workflow_id, unbind_workflow_id
from workflows.models import (
    RefundInput,
    RefundState,
    RefundStatus,
    ResolveCommand,
    UnbindInput,
    UnbindState,
    UnbindStatus,
)


async def paid(env, task_queue, key) -> str:
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    await finish(env, handle)
    assert outcome.invoice_number
    return outcome.invoice_number


def refund_input(key: str, invoice: str, amount: str = "150000.00") -> RefundInput:
    return RefundInput(
        payment_id=key,
        customer_id=CUSTOMER,
        invoice_number=invoice,
        amount=Decimal(amount),
        reason="customer returned the goods",
    )


async def start_refund(env, task_queue, refund: RefundInput) -> WorkflowHandle:
    return await env.client.start_workflow(
        RefundWorkflow.run,
        refund,
        id=refund_workflow_id(refund.payment_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def test_refund_once(env, task_queue, fake, key):
    invoice = await paid(env, task_queue, key)
    handle = await start_refund(env, task_queue, refund_input(key, invoice))
    state: RefundState = await finish(env, handle)
    assert state.status is RefundStatus.REFUNDED
    [call] = fake.calls_of("refund", key)
    assert call.request.transactionId == f"{key}-rfd"
    assert call.correlation_id == payment_correlation_id(key)
    assert call.request.amount == Decimal("150000.00")
    await save_history(handle, "refund_refunded")


async def test_refund_twice_refunds_once(env, task_queue, fake, key):
    invoice = await paid(env, task_queue, key)
    first = await start_refund(env, task_queue, refund_input(key, invoice))
    again = await start_refund(env, task_queue, refund_input(key, invoice))
    assert again.result_run_id == first.result_run_id  # the same execution
    result = await finish(env, first)
    with pytest.raises(WorkflowAlreadyStartedError):  # closed: a new run is refused
        await start_refund(env, task_queue, refund_input(key, invoice))
    same = await env.client.get_workflow_handle_for(
        RefundWorkflow.run, refund_workflow_id(key)
    ).result()
    assert same == result
    assert result.status is RefundStatus.REFUNDED
    assert len(fake.calls_of("refund", key)) == 1


async def test_refund_already_refunded_is_success_without_call(env, task_queue, fake, key):
    invoice = await paid(env, task_queue, key)
    fake.payments[invoice].status = fake.payments[invoice].status.REFUNDED
    state = await finish(env, await start_refund(env, task_queue, refund_input(key, invoice)))
    assert state.status is RefundStatus.REFUNDED
    assert fake.calls_of("refund", key) == []


async def test_partial_refund_refused(env, task_queue, fake, key):
    invoice = await paid(env, task_queue, key)
    handle = await start_refund(env, task_queue, refund_input(key, invoice, "1000.00"))
    state = await finish(env, handle)
    assert state.status is RefundStatus.FAILED
    assert "full only" in (state.failure or "")
    assert fake.calls_of("refund", key) == []


async def test_refund_of_unpaid_payment_fails(env, task_queue, fake, key):
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key), auth_capture=True
    )
    await handle.signal("void", {"reason": "not needed"})
    await finish(env, handle)
    refund = await start_refund(env, task_queue, refund_input(key, outcome.invoice_number))
    state = await finish(env, refund)
    assert state.status is RefundStatus.FAILED
    assert "VOIDED" in (state.failure or "")


async def test_refund_final_error(env, task_queue, fake, key):
    invoice = await paid(env, task_queue, key)
    fake.script(
        f"refund:{key}-rfd",
        final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.REFUND),
    )
    state = await finish(env, await start_refund(env, task_queue, refund_input(key, invoice)))
    assert state.status is RefundStatus.FAILED
    assert state.error_type == "RuleViolationError"


async def start_unbind(env, task_queue, token: str = CARD_TOKEN) -> WorkflowHandle:
    return await env.client.start_workflow(
        CardUnbindWorkflow.run,
        UnbindInput(card_token=token, customer_id=CUSTOMER),
        id=unbind_workflow_id(token),
        task_queue=task_queue,
    )


async def test_unbind(env, task_queue, fake):
    handle = await start_unbind(env, task_queue)
    state: UnbindState = await finish(env, handle)
    assert state.status is UnbindStatus.UNBOUND
    call = fake.calls_of("unbind")[-1]
    assert call.request.transactionId == f"{card_key(CARD_TOKEN)}-unb"
    assert CARD_TOKEN not in call.request.transactionId
    assert len(call.request.transactionId) <= 32
    assert state == await handle.query("state", result_type=UnbindState)


async def test_unbind_unknown_token_fails(env, task_queue, fake):
    token = "tok" + "Z" * 37
    fake.script(
        f"unbind:{card_key(token)}-unb",
        final_error("NotFoundError", GatewayCode.UNSPECIFIED_FAILURE, ServiceCode.UNBIND, 404),
    )
    state = await finish(env, await start_unbind(env, task_queue, token))
    assert state.status is UnbindStatus.FAILED
    assert state.error_type == "NotFoundError"


async def test_refund_without_answer_is_retried_not_failed(env, task_queue, fake, key):
    # Review item 8: no answer after the activity's retries is not a "no": the next round
    # resends the very same request (same transactionId, same body).
    invoice = await paid(env, task_queue, key)
    fake.script(f"refund:{key}-rfd", *[transient_error() for _ in range(8)])
    handle = await start_refund(env, task_queue, refund_input(key, invoice))
    state = await finish(env, handle)
    await save_history(handle, "refund_retried_refunded")
    assert state.status is RefundStatus.REFUNDED
    assert state.rounds == 2
    calls = fake.calls_of("refund", key)
    assert len(calls) == 9
    assert {c.request.transactionId for c in calls} == {f"{key}-rfd"}
    assert fake.payments[invoice].refunded == Decimal("150000.00")


async def test_refund_that_took_effect_unseen_ends_refunded(env, task_queue, fake, key):
    # The refund took effect but every answer was lost, and the look-up right after failed
    # too: Kartu must not say FAILED over money that went back; the next round sees REFUNDED.
    invoice = await paid(env, task_queue, key)
    fake.lose_answer(f"refund:{key}-rfd", *[transient_error() for _ in range(8)])
    fake.script(f"payment_status:{key}-s3", *[transient_error() for _ in range(5)])
    state = await finish(env, await start_refund(env, task_queue, refund_input(key, invoice)))
    assert state.status is RefundStatus.REFUNDED
    assert "already refunded" in state.history[-1].reason
    assert fake.payments[invoice].status.value == "REFUNDED"


async def test_refund_without_answer_for_days_waits_for_ops(env, task_queue, fake, key):
    invoice = await paid(env, task_queue, key)
    for n in range(1, policies.REFUND_MAX_ROUNDS + 1):
        fake.script(f"payment_status:{key}-s{n}", *[transient_error() for _ in range(5)])
    handle = await start_refund(env, task_queue, refund_input(key, invoice))
    await env.sleep(timedelta(days=4))
    state = await wait_for(handle, lambda s: s.status is RefundStatus.NEEDS_ATTENTION, RefundState)
    assert state.rounds == policies.REFUND_MAX_ROUNDS
    assert "payment look-up failed" in (state.last_error or "")
    assert fake.calls_of("refund", key) == []
    await handle.signal("resolve", ResolveCommand(action="retry", resolved_by="ops"))
    state = await finish(env, handle)
    assert state.status is RefundStatus.REFUNDED
    assert len(fake.calls_of("refund", key)) == 1
