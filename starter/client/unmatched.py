"""Unmatched callbacks, stored in Temporal instead of a process's memory.

The gateway calls ``record_unmatched_callback`` for every signed, well-formed callback no running
workflow took: it starts an ``UnmatchedCallback`` workflow (id ``callback-<transactionId>-
<digest of the body>``, conflict policy USE_EXISTING and reuse policy REJECT_DUPLICATE, so a
redelivered callback is stored once) that keeps the callback (encrypted by Kartu's codec) and
checks it against the provider. ``list_unmatched_callbacks`` reads them back from visibility
(their memo: type, transactionId, status, reason and the check's finding; no card data), for
``GET /callbacks/unmatched`` and the reconciliation report.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecution
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from ayoconnect.models import BindingCallback, PaymentCallback
from workflows import search_attributes as sa
from workflows.reconciliation_models import (
    CALLBACK_FLOW,
    CALLBACK_WORKFLOW_TYPE,
    CallbackFinding,
    UnmatchedCallbackInput,
    UnmatchedCallbackMemo,
    callback_memo,
    callback_workflow_id,
)
from workflows.unmatched_callback import MEMO_KEY

from . import pages

__all__ = ["list_unmatched_callbacks", "list_unmatched_callbacks_page", "record_unmatched_callback"]
_QUERY = f"WorkflowType = '{CALLBACK_WORKFLOW_TYPE}'"


async def record_unmatched_callback(
    client: Client,
    task_queue: str,
    callback: BindingCallback | PaymentCallback,
    raw_body: bytes,
    *,
    routed_to: str | None,
    reason: str,
) -> str:
    """Store the callback durably (idempotent by body); returns its workflow id. Raises
    ``RPCError`` when Temporal cannot take it: the caller answers so that Ayoconnect retries."""
    request = UnmatchedCallbackInput(
        callback=callback,
        received_at=datetime.now(UTC),
        body_digest=hashlib.sha256(raw_body).hexdigest(),
        routed_to=routed_to,
        reason=reason[:300],
    )
    workflow_id = callback_workflow_id(callback.transactionId, request.body_digest)
    try:
        await client.start_workflow(
            CALLBACK_WORKFLOW_TYPE,
            request,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={MEMO_KEY: callback_memo(request)},
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.FLOW, CALLBACK_FLOW)]),
        )
    except WorkflowAlreadyStartedError:
        pass  # stored and checked before: the same body delivered again
    return workflow_id


async def list_unmatched_callbacks(
    client: Client, *, since: datetime | None = None, limit: int = 200
) -> list[CallbackFinding]:
    """Stored callbacks, newest first (visibility: eventually consistent, a moment behind)."""
    query = _QUERY
    if since is not None:
        at = since.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        query += f" AND StartTime >= '{at}'"
    found: list[CallbackFinding] = []
    async for execution in client.list_workflows(query, limit=limit, page_size=min(limit, 1000)):
        finding = await _finding(execution)
        if finding is not None:
            found.append(finding)
    return found


async def list_unmatched_callbacks_page(
    client: Client, *, page_size: int = 100, page_token: str | None = None
) -> tuple[list[CallbackFinding], str | None]:
    """``list_unmatched_callbacks`` a page at a time, newest first, and the token of the next
    page (None: the last). Raises ``RPCError`` when Temporal does not answer."""
    size = pages.page_size(page_size)
    _, token = pages.decode_token(page_token, _QUERY, ("callbacks",))
    listed = client.list_workflows(_QUERY, page_size=size, next_page_token=token)
    await listed.fetch_next_page()
    found = [f for e in listed.current_page or () if (f := await _finding(e)) is not None]
    following = listed.next_page_token
    return found, pages.encode_token(_QUERY, "callbacks", following) if following else None


async def _finding(execution: WorkflowExecution) -> CallbackFinding | None:
    memo = await execution.memo_value(MEMO_KEY, None, type_hint=UnmatchedCallbackMemo)
    if memo is None:
        return None
    return CallbackFinding(
        callback_workflow_id=execution.id,
        type=memo.type,
        transaction_id=memo.transaction_id,
        status=memo.status,
        received_at=memo.received_at,
        payment_id=memo.payment_id,
        routed_to=memo.routed_to,
        reason=memo.reason,
        finding=memo.finding,
    )
