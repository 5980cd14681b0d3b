"""Card registration: webview early return, REGISTERED / FAILED by callback, EXPIRED, the
cards-list look-up when the callback never comes, callbacks not ours or duplicated."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError
from workflow_fakes import CARD_TOKEN, OTHER_TOKEN, card, final_error
from workflow_helpers import finish, save_history, wait_for

from ayoconnect.codes import GatewayCode, ServiceCode, response_code
from ayoconnect.models import BindingCallback, Customer
from workflows import CardRegistrationWorkflow
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


def binding(key: str, status: str = "ACTIVE", token: str = CARD_TOKEN) -> BindingCallback:
    ok = status == "ACTIVE"
    return BindingCallback(
        type="CARD_BINDING",
        transactionId=f"{key}-reg",
        referenceNumber=f"REF-{key}-reg",
        customerId="CUST000999" if ok else None,
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
    webview, handle = await start(env, task_queue, registration(key))
    assert webview.url == f"https://webview.test/{key}-reg"
    state = await handle.query("state", result_type=RegistrationState)
    assert state.status is RegistrationStatus.PENDING
    assert state.webview == webview

    await handle.signal("binding_callback", binding(key))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.REGISTERED
    assert (state.card_token, state.customer_id) == (CARD_TOKEN, "CUST000999")
    assert state.masked_card == "411111******1111"
    [call] = fake.calls_of("generate_webview", key)
    assert call.request.transactionId == f"{key}-reg"
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.CUSTOMER_ID) == "CUST000999"
    assert all(CARD_TOKEN not in str(pair.value) for pair in attrs)
    await save_history(handle, "registration_registered")


async def test_failed_by_callback(env, task_queue, key):
    _, handle = await start(env, task_queue, registration(key))
    await handle.signal("binding_callback", binding(key, status="FAILED"))
    state = await finish(env, handle)
    assert state.status is RegistrationStatus.FAILED
    assert state.response_code and state.response_code.endswith(
        GatewayCode.AUTHENTICATION_FAILED.value
    )


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


async def test_callbacks_not_ours_or_duplicated_are_ignored(env, task_queue, key):
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
