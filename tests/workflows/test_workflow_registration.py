"""Card registration: webview early return; a binding callback is a hint confirmed by the
cards list (REGISTERED), a FAILED one ends nothing while the session is open; EXPIRED; the
cards-list look-up when the callback never comes; an unreadable cards list (retried, then
UNCONFIRMED); callbacks not ours, duplicated, for another customer, or a flood."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError
from workflow_fakes import CARD_TOKEN, OTHER_TOKEN, card, final_error, transient_error
from workflow_helpers import finish, save_history, wait_for

from ayoconnect.codes import GatewayCode, ServiceCode, response_code
from ayoconnect.models import BindingCallback, Customer
from workflows import CardRegistrationWorkflow, policies
from workflows import search_attributes as sa
from workflows.ids import registration_workflow_id
from workflows.models import RegistrationInput, RegistrationState, RegistrationStatus, WebviewInfo

KNOWN_CUSTOMER = "CUST000777"


def registration(key: str, customer_id: str | None = None) -> RegistrationInput:
    return RegistrationInput(
        registration_id=key,
        customer=Customer(
            customerId=customer_id,
            name="Budi Santoso",
            email="budi@example.test",
            phoneNumber="6281234567890",
        ),
        redirect_url="https://merchant.test/cards/done",
    )


async def start(env, task_queue, reg: RegistrationInput) -> tuple[WebviewInfo, WorkflowHandle]:
    operation = WithStartWorkflowOperation(
        CardRegistrationWorkflow.run,
        reg,
        id=registration_workflow_id(reg.registration_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    webview = await env.client.execute_update_with_start_workflow(
        CardRegistrationWorkflow.webview, start_workflow_operation=operation
    )
    return webview, await operation.workflow_handle()


def customer_of(key: str) -> str:
    """The customer id Ayoconnect gives this test's new customer (unique per test: the fake's
    cards lists live as long as the test module)."""
    return "C" + key[2:14]


def binding(
    key: str, status: str = "ACTIVE", token: str = CARD_TOKEN, customer: str | None = None
) -> BindingCallback:
    ok = status == "ACTIVE"
    return BindingCallback(
        type="CARD_BINDING",
        transactionId=f"{key}-reg",
        referenceNumber=f"REF-{key}-reg",
        customerId=(customer or customer_of(key)) if ok else None,
        cardToken=token if ok else None,
        maskedCard="411111******1111" if ok else None,
        brand="VISA" if ok else None,
        status=status,
        responseCode=response_code(
            200 if ok else 400,
            ServiceCode.GENERATE_WEBVIEW,
            GatewayCode.APPROVED if ok else GatewayCode.AUTHENTICATION_FAILED,
        ),
    )


async def test_registered_by_callback(env, task_queue, fake, key):
    fake.cards[customer_of(key)] = [card(CARD_TOKEN)]  # the provider holds the bound card
    webview, handle = await start(env, task_queue, registration(key))
    assert webview.url == f"https://webview.test/{key}-reg"
    state = await handle.query("state", result_type=RegistrationState)
    assert state.status is RegistrationStatus.PENDING
    assert state.webview == webview

    await handle.signal("binding_callback", binding(key))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.REGISTERED
    assert (state.card_token, state.customer_id) == (CARD_TOKEN, customer_of(key))
    assert state.masked_card == "411111******1111"
    assert state.history[-1].at < webview.expires_at  # confirmed at once, not at the end
    [call] = fake.calls_of("generate_webview", key)
    assert call.request.transactionId == f"{key}-reg"
    # Confirmed against the callback's customer's cards list (the callback is only a hint).
    [look_up] = fake.calls_of("list_cards", key)
    assert (look_up.transaction_id, look_up.customer_id) == (f"{key}-l1", customer_of(key))
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.CUSTOMER_ID) == customer_of(key)
    assert all(CARD_TOKEN not in str(pair.value) for pair in attrs)
    await save_history(handle, "registration_registered")


async def test_failed_by_callback(env, task_queue, key):
    webview, handle = await start(env, task_queue, registration(key))
    await handle.signal("binding_callback", binding(key, status="FAILED"))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.FAILED
    assert state.response_code and state.response_code.endswith(
        GatewayCode.AUTHENTICATION_FAILED.value
    )
    # Issue 8, finding 7: a FAILED callback ends nothing while another may still come.
    assert state.history[-1].at >= webview.expires_at + timedelta(minutes=10)


async def test_failed_then_active_callback_registers(env, task_queue, fake, key):
    # Issue 8, finding 7: the first callback said FAILED, the real ACTIVE one came next.
    fake.cards[customer_of(key)] = [card(CARD_TOKEN)]
    _, handle = await start(env, task_queue, registration(key))
    await handle.signal("binding_callback", binding(key, status="FAILED"))
    await env.sleep(60)
    state = await handle.query("state", result_type=RegistrationState)
    assert state.status is RegistrationStatus.PENDING
    await handle.signal("binding_callback", binding(key))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.REGISTERED
    assert (state.card_token, state.customer_id) == (CARD_TOKEN, customer_of(key))
    assert state.reason is None


async def test_known_customer_failed_callback_decided_by_the_cards_list(env, task_queue, fake, key):
    # A known customer: the FAILED callback is a hint; at the end the cards list decides.
    fake.cards["CUST000222:l1"] = [card(OTHER_TOKEN)]  # before the webview
    fake.cards["CUST000222"] = [card(OTHER_TOKEN), card(CARD_TOKEN)]  # bound after all
    fake.cards["CUST000223"] = [card(OTHER_TOKEN)]  # nothing new
    _, bound = await start(env, task_queue, registration(key, "CUST000222"))
    _, failed = await start(env, task_queue, registration(key + "b", "CUST000223"))
    await bound.signal("binding_callback", binding(key, status="FAILED"))
    await failed.signal("binding_callback", binding(key + "b", status="FAILED"))
    state = await finish(env, bound)
    assert (state.status, state.card_token) == (RegistrationStatus.REGISTERED, CARD_TOKEN)
    state = await finish(env, failed)
    assert state.status is RegistrationStatus.FAILED
    assert state.response_code and state.response_code.endswith(
        GatewayCode.AUTHENTICATION_FAILED.value
    )


async def test_active_callback_for_a_card_the_list_does_not_show(env, task_queue, fake, key):
    # Issue 8, finding 7: a signed ACTIVE callback whose card the provider does not hold.
    fake.cards[customer_of(key)] = [card(OTHER_TOKEN)]
    _, handle = await start(env, task_queue, registration(key))
    await handle.signal("binding_callback", binding(key))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.EXPIRED
    assert state.card_token is None
    assert "cards list does not show" in (state.reason or "")
    # Looked up when it came and once more at the end (a list may lag behind a callback).
    assert [c.transaction_id for c in fake.calls_of("list_cards", key)] == [
        f"{key}-l1",
        f"{key}-l2",
    ]


async def test_active_callback_for_a_card_bound_before_is_not_registered(
    env, task_queue, fake, key
):
    # A known customer's card that was already there before the webview is no new binding.
    fake.cards["CUST000555"] = [card(CARD_TOKEN)]
    _, handle = await start(env, task_queue, registration(key, "CUST000555"))
    await handle.signal("binding_callback", binding(key, customer="CUST000555"))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.EXPIRED
    assert state.card_token is None


async def test_callback_with_another_customer_id_is_ignored(env, task_queue, fake, key):
    # The registration is for a known customer; a callback names another one (who does hold
    # that card): it is not this registration's binding, and that list is never read.
    fake.cards["CUST000666"] = [card(OTHER_TOKEN)]
    fake.cards["CUST000444"] = [card(CARD_TOKEN)]
    _, handle = await start(env, task_queue, registration(key, "CUST000666"))
    await handle.signal("binding_callback", binding(key, customer="CUST000444"))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.EXPIRED
    assert (state.card_token, state.customer_id) == (None, "CUST000666")
    assert "names customer CUST000444" in state.ignored[0].reason
    assert {c.customer_id for c in fake.calls_of("list_cards", key)} == {"CUST000666"}


async def test_cards_list_down_then_up(env, task_queue, fake, key):
    # The list cannot be read when the callback comes, nor at the end of the wait: the
    # look-up is retried on a backoff, and the registration waits for the truth.
    fake.cards[customer_of(key)] = [card(CARD_TOKEN)]
    for n in (1, 2, 3):
        fake.script(f"list_cards:{key}-l{n}", *[transient_error() for _ in range(5)])
    webview, handle = await start(env, task_queue, registration(key))
    await handle.signal("binding_callback", binding(key))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.REGISTERED
    assert state.card_token == CARD_TOKEN
    assert state.history[-1].at > webview.expires_at + timedelta(minutes=10)
    tids = [c.transaction_id for c in fake.calls_of("list_cards", key)]
    assert tids[-1] == f"{key}-l4" and len(tids) == 16  # 3 x 5 failed attempts, then l4


async def test_cards_list_down_for_too_long_ends_unconfirmed(env, task_queue, fake, key):
    # Never an invented result: a signed ACTIVE callback and no way to confirm it.
    for n in range(1, 40):
        fake.script(f"list_cards:{key}-l{n}", *[transient_error() for _ in range(5)])
    webview, handle = await start(env, task_queue, registration(key))
    await handle.signal("binding_callback", binding(key))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.UNCONFIRMED
    assert "unconfirmed" in (state.reason or "")
    assert (state.card_token, state.customer_id) == (CARD_TOKEN, customer_of(key))
    end_of_wait = webview.expires_at + timedelta(minutes=10)
    assert state.history[-1].at >= end_of_wait + policies.REGISTRATION_CONFIRM_WINDOW
    assert len(fake.calls_of("list_cards", key)) < 40 * 5  # bounded look-ups


async def test_callback_flood_is_bounded(env, task_queue, fake, key):
    # Each accepted callback may cost a look-up: past MAX_BINDING_CALLBACKS they are ignored.
    fake.cards[customer_of(key)] = []
    _, handle = await start(env, task_queue, registration(key))
    extra = 5
    for n in range(policies.MAX_BINDING_CALLBACKS + extra):
        await handle.signal("binding_callback", binding(key, token=f"tok{n:037d}"))
    await handle.signal("binding_callback", binding(key, token=f"tok{0:037d}"))  # duplicate
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.EXPIRED
    reasons = [i.reason for i in state.ignored]
    assert sum("more than" in r for r in reasons) == extra
    assert reasons[-1] == "duplicate binding callback"
    assert len(fake.calls_of("list_cards", key)) <= policies.MAX_BINDING_CALLBACKS + 1


async def test_expired_without_callback(env, task_queue, fake, key):
    webview, handle = await start(env, task_queue, registration(key))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.EXPIRED
    assert state.history[-1].at >= webview.expires_at
    assert fake.calls_of("list_cards", key) == []  # no customer id to look up


async def test_found_in_cards_list_when_callback_never_comes(env, task_queue, fake, key):
    fake.cards[f"{KNOWN_CUSTOMER}:l1"] = [card(OTHER_TOKEN)]  # before the webview
    fake.cards[f"{KNOWN_CUSTOMER}:l2"] = [card(OTHER_TOKEN), card(CARD_TOKEN)]  # after
    _, handle = await start(env, task_queue, registration(key, KNOWN_CUSTOMER))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.REGISTERED
    assert state.card_token == CARD_TOKEN
    assert state.customer_id == KNOWN_CUSTOMER
    assert [c.transaction_id for c in fake.calls_of("list_cards", key)] == [
        f"{key}-l1",
        f"{key}-l2",
    ]


async def test_known_customer_without_new_card_expires(env, task_queue, fake, key):
    fake.cards["CUST000888"] = [card(OTHER_TOKEN)]  # the same cards before and after
    _, handle = await start(env, task_queue, registration(key, "CUST000888"))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.EXPIRED


async def test_callbacks_not_ours_or_duplicated_are_ignored(env, task_queue, fake, key):
    fake.cards[customer_of(key)] = [card(CARD_TOKEN)]
    _, handle = await start(env, task_queue, registration(key))
    stranger = binding(key).model_copy(update={"transactionId": "someoneelse-reg"})
    await handle.signal("binding_callback", stranger)
    await wait_for(handle, lambda s: s.ignored, RegistrationState)
    await handle.signal("binding_callback", binding(key))
    with contextlib.suppress(RPCError):  # the workflow may have completed already
        await handle.signal("binding_callback", binding(key, token=OTHER_TOKEN))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.REGISTERED
    assert state.card_token == CARD_TOKEN
    reasons = [i.reason for i in state.ignored]
    assert "not this registration" in reasons[0]
    assert len(reasons) in (1, 2)  # the duplicate is recorded if it beat the workflow's end


async def test_webview_failure_reported_by_update(env, task_queue, fake, key):
    fake.script(
        f"generate_webview:{key}-reg",
        final_error(
            "InvalidRequestError", GatewayCode.UNSPECIFIED_FAILURE, ServiceCode.GENERATE_WEBVIEW
        ),
    )
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await start(env, task_queue, registration(key))
    assert "webview not generated" in str(failed.value.cause)
    handle = env.client.get_workflow_handle_for(
        CardRegistrationWorkflow.run, registration_workflow_id(key)
    )
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.FAILED


async def test_binding_callback_retried_after_the_session_still_registers(
    env, task_queue, fake, key
):
    # Review item 11: Ayoconnect retries a callback after 1, 2 and 5 minutes; the third retry
    # lands 8 minutes after a callback sent as the session ends: the default margin covers it.
    fake.cards[customer_of(key)] = [card(CARD_TOKEN)]
    webview, handle = await start(env, task_queue, registration(key))
    await env.sleep(300 + 8 * 60)
    state = await handle.query("state", result_type=RegistrationState)
    assert state.status is RegistrationStatus.PENDING
    await handle.signal("binding_callback", binding(key))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.REGISTERED
    assert state.history[-1].at > webview.expires_at


async def test_naive_webview_expiry_is_jakarta_time(env, task_queue, fake, key):
    # Review item 6: a webview expiresAt without an offset must not wedge the workflow.
    fake.naive_times = True
    try:
        webview, handle = await asyncio.wait_for(start(env, task_queue, registration(key)), 10)
    finally:
        fake.naive_times = False
    assert webview.expires_at.utcoffset() == timedelta(hours=7)
    state = await asyncio.wait_for(finish(env, handle), 10)
    assert state.status is RegistrationStatus.EXPIRED
    assert state.history[-1].at >= webview.expires_at + timedelta(minutes=10)
