"""Callbacks no running workflow takes are stored in Temporal (an ``UnmatchedCallback`` workflow
per body), checked against the provider, and listed from Temporal: a gateway that never saw
them (restarted, another replica) lists them too."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus

from gateway import create_app
from starter.client import KartuClient
from tests.kartu_stack import API_KEY, CALLBACK_PATH, Stack, new_customer_id, new_key
from workflows.models import PaymentStatus
from workflows.reconciliation_models import (
    ReviewState,
    ReviewStatus,
    UnmatchedCallbackState,
    Verdict,
    callback_workflow_id,
)

REDIRECT = "https://merchant.example/pay/done"


async def post_raw(http: httpx.AsyncClient, stack: Stack, body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, indent=2).encode()
    headers = {"Content-Type": "application/json", "X-Authorization": stack.signature()}
    answer = await http.post(CALLBACK_PATH, content=raw, headers=headers)
    assert answer.status_code == 202 and answer.json()["result"] == "unmatched", answer.text
    return raw


async def listed(http: httpx.AsyncClient, workflow_id: str) -> dict[str, Any]:
    """The entry of ``GET /callbacks/unmatched`` stored as ``workflow_id``, once its check is
    done (visibility is a moment behind)."""
    for _ in range(100):
        answer = await http.get("/callbacks/unmatched", headers={"X-API-Key": API_KEY})
        assert answer.status_code == 200
        entries = answer.json()["callbacks"]
        mine = [e for e in entries if e["callback_workflow_id"] == workflow_id]
        if mine and mine[0]["finding"]:
            return mine[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} never listed with a finding")


async def test_a_late_callback_is_stored_checked_and_listed_by_any_gateway(
    stack: Stack, http: httpx.AsyncClient, kartu: KartuClient
):
    key = new_key("late")
    await kartu.pay(
        key,
        customer_id=new_customer_id(),
        amount="150000.00",
        redirect_url=REDIRECT,
        encrypted_card=await stack.encrypted_card(),
    )
    state = await kartu.wait_payment(key, [PaymentStatus.PAID], timeout=15)
    handle = stack.client.get_workflow_handle(state.workflow_id)
    for _ in range(100):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.05)
    body = {
        "type": "PAYMENT",
        "transactionId": f"{key}-pay",
        "invoiceNumber": state.invoice_number,
        "operation": "PAY",
        "status": "SUCCESS",
        "amount": "150000.00",
        "responseCode": "2005401",
    }
    # The payment's own SUCCESS, arriving after it closed PAID: nothing to store or check.
    headers = {"Content-Type": "application/json", "X-Authorization": stack.signature()}
    late = await http.post(CALLBACK_PATH, content=json.dumps(body).encode(), headers=headers)
    # (or, when the sandbox delivered these very bytes already, a duplicate)
    assert late.status_code == 200 and late.json()["result"] in ("late", "duplicate"), late.text
    # One that contradicts what Kartu closed with is stored and checked with the provider.
    body = {**body, "status": "FAILED", "responseCode": "4005410"}
    raw = await post_raw(http, stack, body)
    stored = callback_workflow_id(f"{key}-pay", hashlib.sha256(raw).hexdigest())
    checked = await stack.client.get_workflow_handle(
        stored, result_type=UnmatchedCallbackState
    ).result()
    assert checked.verdict is Verdict.AGREE
    assert checked.memo.finding == (
        "agrees: Kartu PAID, provider SUCCESS; "
        "the callback said FAILED, the provider's status API says SUCCESS"
    )

    entry = await listed(http, stored)
    assert entry["transaction_id"] == f"{key}-pay" and entry["status"] == "FAILED"
    assert entry["workflow_id"] == state.workflow_id and "closed as PAID" in entry["reason"]
    assert entry["finding"] == checked.memo.finding

    # Another gateway, with an empty memory, lists it from Temporal.
    other = create_app(stack.kartu, stack.gateway_settings, ayoconnect_settings=stack.ayoconnect)
    assert len(other.state.callback_journal.unmatched) == 0
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://other") as fresh:
        assert (await listed(fresh, stored))["finding"] == checked.memo.finding


async def test_a_callback_claiming_money_kartu_never_saw_opens_a_review(
    stack: Stack, http: httpx.AsyncClient
):
    key = new_key("ghost")
    body = {
        "type": "PAYMENT",
        "transactionId": f"{key}-pay",
        "invoiceNumber": "INV-NOT-KARTUS",
        "operation": "PAY",
        "status": "SUCCESS",
        "amount": "99000.00",
        "responseCode": "2005401",
    }
    raw = await post_raw(http, stack, body)
    stored = callback_workflow_id(f"{key}-pay", hashlib.sha256(raw).hexdigest())
    checked = await stack.client.get_workflow_handle(
        stored, result_type=UnmatchedCallbackState
    ).result()
    assert checked.raised == f"review review-{key} (NEEDS_ATTENTION)"
    review = await stack.client.get_workflow_handle(f"review-{key}").query(
        "state", result_type=ReviewState
    )
    assert review.status is ReviewStatus.NEEDS_ATTENTION
    assert review.differences == checked.differences
    assert "payment Kartu does not know" in review.differences[0]
