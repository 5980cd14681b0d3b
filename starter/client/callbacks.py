"""``deliver_callback``: an Ayoconnect callback signalled to the workflow its transactionId
names (the gateway's ``/callbacks/ayoconnect``). An unroutable transactionId, or an unknown or
finished workflow, is not an error: the delivery says why it was not sent."""

from __future__ import annotations

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from ayoconnect.models import BindingCallback, PaymentCallback
from workflows import search_attributes as sa
from workflows.ids import UnroutableCallbackError, parse_callback_transaction_id
from workflows.reconcile_rules import callback_agrees

from .core import ClientCore, _not_found, _unavailable
from .models import CallbackDelivery


class CallbacksMixin(ClientCore):
    async def deliver_callback(
        self, callback: BindingCallback | PaymentCallback
    ) -> CallbackDelivery:
        """Signal an Ayoconnect callback to its workflow. An unroutable transactionId or an
        unknown or finished workflow is not an error: the delivery says why it was not sent."""
        try:
            route = parse_callback_transaction_id(callback.transactionId)
        except UnroutableCallbackError as exc:
            return CallbackDelivery(delivered=False, reason=str(exc))
        expected = (
            "binding_callback" if isinstance(callback, BindingCallback) else "payment_callback"
        )
        if route.signal != expected:
            return CallbackDelivery(
                delivered=False,
                workflow_id=route.workflow_id,
                reason=f"{callback.type} callback with a {route.step!r} transactionId",
            )
        handle = self._client.get_workflow_handle(route.workflow_id)
        try:
            await handle.signal(route.signal, callback)
        except RPCError as err:
            if not _not_found(err):
                raise _unavailable(err) from None
            closed_as = await self._closed_status(handle)
            agrees = closed_as is not None and callback_agrees(callback, closed_as)
            why = f"workflow not running: {err.message}"
            if closed_as is not None:
                why = f"workflow closed as {closed_as}"
            return CallbackDelivery(
                delivered=False,
                workflow_id=route.workflow_id,
                signal=route.signal,
                reason=why,
                agrees_with_closed=agrees,
            )
        return CallbackDelivery(delivered=True, workflow_id=route.workflow_id, signal=route.signal)

    async def _closed_status(self, handle: WorkflowHandle) -> str | None:
        """The status a closed workflow ended in (its search attribute: no replay), if any."""
        try:
            described = await handle.describe()
        except RPCError as err:
            if _not_found(err):
                return None
            raise _unavailable(err) from None
        if described.status is WorkflowExecutionStatus.RUNNING:
            return None
        return described.typed_search_attributes.get(sa.PAYMENT_STATUS)
