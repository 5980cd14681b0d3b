"""Refund (once per payment, full only, one provider request whoever asks) and unbind; both
can be asked again after a FAILED run (``attempt`` + 1) and ride over authentication errors."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from workflow_fakes import CARD_TOKEN, card, final_error, transient_error
from workflow_helpers import CUSTOMER, finish, payment_input, save_history, start_payment, wait_for

from ayoconnect.codes import GatewayCode, ServiceCode
from ayoconnect.models import CardStatus
from workflows import CardUnbindWorkflow, RefundWorkflow, policies
from workflows.ids import (
    REFUND_WIRE_REASON,
    card_key,
    payment_correlation_id,
    refund_workflow_id,
    unbind_workflow_id,
)
from workflows.models import (
    PaymentState,
    PaymentStatus,
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


def refund_input(
    key: str,
    invoice: str,
    amount: str = "150000.00",
    attempt: int = 1,
    reason: str = "customer returned the goods",
) -> RefundInput:
    return RefundInput(
        payment_id=key,
        customer_id=CUSTOMER,
        invoice_number=invoice,
        amount=Decimal(amount),
        reason=reason,
        attempt=attempt,
    )


async def start_refund(
    env,
    task_queue,
    refund: RefundInput,
    reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
) -> WorkflowHandle:
    return await env.client.start_workflow(
        RefundWorkflow.run,
        refund,
        id=refund_workflow_id(refund.payment_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=reuse,
    )


def auth_error() -> ApplicationError:
    """A 401/403 as the activities raise it since issue 8: retryable (a credential rotation)."""
    return ApplicationError(
        "AuthenticationError from fake",
        {"response_code": None, "gateway_code": None, "http_status": 401, "message": "401"},
        type="AuthenticationError",
    )


def token_of(key: str) -> str:
    """A card token of this test's own (the unbind workflow id derives from the token)."""
    return ("tok" + key[2:] + "X" * 40)[:40]


async def test_refund_once(env, task_queue, fake, key):
    invoice = await paid(env, task_queue, key)
    handle = await start_refund(env, task_queue, refund_input(key, invoice))
    state: RefundState = await finish(env, handle)
    assert state.status is RefundStatus.REFUNDED
    [call] = fake.calls_of("refund", key)
    assert call.request.transactionId == f"{key}-rfd"
    assert call.correlation_id == payment_correlation_id(key)
    assert call.request.amount == Decimal("150000.00")
    assert state.attempt == 1
    await save_history(handle, "refund_refunded")


async def test_refund_is_the_one_wire_request_of_the_payment(env, task_queue, fake, key):
    # Issue 8, finding 4: every refund of a payment is ONE provider request (step ``rfd``, the
    # fixed wire reason, the full amount): the merchant's reason stays in Kartu, never sent, so
    # a compensation asking at the same time sends the very same transactionId and body.
    invoice = await paid(env, task_queue, key)
    handle = await start_refund(env, task_queue, refund_input(key, invoice, reason="damaged"))
    state = await finish(env, handle)
    assert state.status is RefundStatus.REFUNDED
    calls = fake.calls_of("refund", key)
    assert {c.request.transactionId for c in calls} == {f"{key}-rfd"}
    assert {c.request.reason for c in calls} == {REFUND_WIRE_REASON}
    assert {c.request.amount for c in calls} == {Decimal("150000.00")}
    assert state.reason == "damaged"
    assert "damaged" in state.history[-1].reason
    assert fake.payments[invoice].refunded == Decimal("150000.00")


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


async def test_refund_after_a_failed_run_is_asked_again_and_refunds_once(
    env, task_queue, fake, key
):
    # Issue 8, finding 3: a refund that ended FAILED can be asked again (a new run of the same
    # workflow id, attempt + 1: a new transactionId, as the spent ``rfd`` replays its refusal),
    # and asking again after it worked refunds nothing more.
    invoice = await paid(env, task_queue, key)
    fake.script(
        f"refund:{key}-rfd",
        final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.REFUND),
    )
    first = await finish(env, await start_refund(env, task_queue, refund_input(key, invoice)))
    assert first.status is RefundStatus.FAILED
    reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE
    again = refund_input(key, invoice, attempt=2)
    second = await finish(env, await start_refund(env, task_queue, again, reuse))
    assert (second.status, second.attempt) == (RefundStatus.REFUNDED, 2)
    third = await finish(
        env, await start_refund(env, task_queue, refund_input(key, invoice, attempt=3), reuse)
    )
    assert third.status is RefundStatus.REFUNDED
    assert "already refunded" in third.history[-1].reason
    tids = [c.request.transactionId for c in fake.calls_of("refund", key)]
    assert tids == [f"{key}-rfd", f"{key}-rfd2"]  # the third run looked up, sent nothing
    assert fake.payments[invoice].refunded == Decimal("150000.00")


async def test_refund_rides_over_an_authentication_error(env, task_queue, fake, key):
    # Issue 8, finding 3: a 401/403 (credential rotation) is retried by the activity; when the
    # retries run out the round has no definite answer and is retried: never FAILED.
    invoice = await paid(env, task_queue, key)
    attempts = policies.MONEY.retry.maximum_attempts
    fake.script(f"refund:{key}-rfd", *[auth_error() for _ in range(attempts)])
    state = await finish(env, await start_refund(env, task_queue, refund_input(key, invoice)))
    assert state.status is RefundStatus.REFUNDED
    assert state.rounds == 2
    assert "FAILED" not in [t.to_status for t in state.history]
    calls = fake.calls_of("refund", key)
    assert len(calls) == attempts + 1
    assert {c.request.transactionId for c in calls} == {f"{key}-rfd"}


async def start_unbind(
    env, task_queue, token: str = CARD_TOKEN, attempt: int = 1, customer: str = CUSTOMER
) -> WorkflowHandle:
    return await env.client.start_workflow(
        CardUnbindWorkflow.run,
        UnbindInput(card_token=token, customer_id=customer, attempt=attempt),
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
    fake.script(f"payment_status:{key}-r13", *[transient_error() for _ in range(5)])
    state = await finish(env, await start_refund(env, task_queue, refund_input(key, invoice)))
    assert state.status is RefundStatus.REFUNDED
    assert "already refunded" in state.history[-1].reason
    assert fake.payments[invoice].status.value == "REFUNDED"


async def test_refund_without_answer_for_days_waits_for_ops(env, task_queue, fake, key):
    invoice = await paid(env, task_queue, key)
    for n in range(1, policies.REFUND_MAX_ROUNDS + 1):
        fake.script(f"payment_status:{key}-r1{n}", *[transient_error() for _ in range(5)])
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


async def test_unbind_after_a_failed_run_sends_the_next_attempt(env, task_queue, fake, key):
    # Issue 8, finding 3: ``unbind-<digest>`` can be started again (a FAILED unbind, or a card
    # registered again with the same token): the n-th run sends ``unb<n>``.
    token = token_of(key)
    fake.script(
        f"unbind:{card_key(token)}-unb",
        final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.UNBIND),
    )
    first = await finish(env, await start_unbind(env, task_queue, token))
    assert first.status is UnbindStatus.FAILED
    second = await finish(env, await start_unbind(env, task_queue, token, attempt=2))
    assert (second.status, second.attempt) == (UnbindStatus.UNBOUND, 2)
    tids = [c.request.transactionId for c in fake.calls_of("unbind", card_key(token))]
    assert tids == [f"{card_key(token)}-unb", f"{card_key(token)}-unb2"]


async def test_unbind_rides_over_an_authentication_error(env, task_queue, fake, key):
    # A credential rotation outlasting the activity's retries: the next round resends the same
    # request on a backoff; the unbind does not end FAILED.
    token = token_of(key)
    attempts = policies.UNBIND.retry.maximum_attempts
    fake.script(f"unbind:{card_key(token)}-unb", *[auth_error() for _ in range(attempts)])
    state = await finish(env, await start_unbind(env, task_queue, token))
    assert state.status is UnbindStatus.UNBOUND
    calls = fake.calls_of("unbind", card_key(token))
    assert len(calls) == attempts + 1
    assert {c.request.transactionId for c in calls} == {f"{card_key(token)}-unb"}


async def test_unbind_without_any_answer_fails_after_its_rounds(env, task_queue, fake, key):
    token = token_of(key)
    attempts = policies.UNBIND.retry.maximum_attempts * policies.UNBIND_MAX_ROUNDS
    fake.script(f"unbind:{card_key(token)}-unb", *[auth_error() for _ in range(attempts)])
    state = await finish(env, await start_unbind(env, task_queue, token))
    assert state.status is UnbindStatus.FAILED
    assert state.error_type == "AuthenticationError"
    assert f"after {policies.UNBIND_MAX_ROUNDS} rounds" in (state.failure or "")
    assert len(fake.calls_of("unbind", card_key(token))) == attempts


async def test_unbind_refused_but_disabled_in_the_cards_list_is_unbound(env, task_queue, fake, key):
    # The provider refuses (an earlier unbind already disabled the token): its cards list
    # says DISABLED, which is what the unbind was for.
    token = token_of(key)
    fake.cards["CUST000321"] = [card(token, CardStatus.DISABLED)]
    fake.script(
        f"unbind:{card_key(token)}-unb",
        final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.UNBIND),
    )
    state = await finish(env, await start_unbind(env, task_queue, token, customer="CUST000321"))
    assert state.status is UnbindStatus.UNBOUND
    assert "cards list shows the token disabled" in state.history[-1].reason


async def test_merchant_refund_and_compensation_send_one_request(env, task_queue, fake, key):
    # Issue 8, finding 4: a merchant refund and the payment's own compensation asking at the
    # same time send the same transactionId with the same body: the provider refunds once
    # (its idempotency answers the second with the first's stored answer, not a 409).
    fake.script(f"confirm_with_merchant:{key}", *[transient_error() for _ in range(50)])
    outcome, payment = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url="https://merchant.test/ok")
    )
    assert outcome.invoice_number
    await wait_for(payment, lambda s: fake.calls_of("confirm_with_merchant", key))
    gate = fake.gates[f"refund:{key}-rfd"] = asyncio.Event()
    try:
        refund = await start_refund(env, task_queue, refund_input(key, outcome.invoice_number))
        await wait_for(refund, lambda s: len(fake.calls_of("refund", key)) == 1, RefundState)
        await payment.cancel()
        await wait_for(payment, lambda s: len(fake.calls_of("refund", key)) == 2)
    finally:
        gate.set()
        del fake.gates[f"refund:{key}-rfd"]
    state = await finish(env, refund)
    assert state.status is RefundStatus.REFUNDED
    with contextlib.suppress(WorkflowFailureError):  # a cancelled payment ends cancelled
        await finish(env, payment)
    del fake.scripts[f"confirm_with_merchant:{key}"]
    assert (await payment.query("state", result_type=PaymentState)).status is PaymentStatus.REFUNDED
    calls = fake.calls_of("refund", key)
    assert {c.request.transactionId for c in calls} == {f"{key}-rfd"}
    assert len({c.request.model_dump_json() for c in calls}) == 1  # the very same body
    assert fake.payments[outcome.invoice_number].refunded == Decimal("150000.00")
