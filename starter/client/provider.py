"""The provider's own view: Ayoconnect's Get Payment Status and Get Cards List, through short
read-only look-up workflows (``workflows/lookups.py``), since only activities call Ayoconnect."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from workflows.ids import Step, transaction_id
from workflows.lookups import (
    LOOKUP_PREFIX,
    ProviderCardsLookupWorkflow,
    ProviderCardsQuery,
    ProviderCardsView,
    ProviderPaymentLookupWorkflow,
    ProviderPaymentQuery,
)
from workflows.models import PaymentFlow

from . import summaries
from .core import ClientCore, _unavailable
from .errors import KartuError, KartuTimeout
from .models import ProviderStatus, _CustomerIdOnly
from .validation import _validated

# A look-up's READ activity gives up after 2 minutes; its workflow a little later.
LOOKUP_EXECUTION_TIMEOUT = timedelta(minutes=3)


class ProviderMixin(ClientCore):
    async def provider_status(
        self, payment_id: str, *, timeout: float | None = None
    ) -> ProviderStatus:
        """Kartu's state of the payment beside Ayoconnect's Get Payment Status for it (by
        invoice number, or by the charge's transactionId while Kartu has no invoice yet). The
        provider not knowing the payment is an answer (``outcome`` ``unknown``), not an error."""
        state = await self._payment(payment_id)
        step = Step.PAY if state.flow is PaymentFlow.DIRECT else Step.AUTHORIZE
        query = ProviderPaymentQuery(
            payment_id=payment_id,
            customer_id=state.customer_id,
            invoice_number=state.invoice_number,
            original_transaction_id=(
                None if state.invoice_number else transaction_id(payment_id, step)
            ),
        )
        view = await self._lookup(
            ProviderPaymentLookupWorkflow.run, query, timeout, f"payment {payment_id}"
        )
        return ProviderStatus(kartu=state, provider=view)

    async def provider_cards(
        self, customer_id: str, *, timeout: float | None = None
    ) -> ProviderCardsView:
        """Ayoconnect's Get Cards List for the customer, as the provider answers it."""
        checked = _validated(_CustomerIdOnly, {"customer_id": customer_id}).customer_id
        query = ProviderCardsQuery(customer_id=checked)
        return await self._lookup(
            ProviderCardsLookupWorkflow.run, query, timeout, f"cards of {checked}"
        )

    async def _lookup(self, run: Any, query: BaseModel, timeout: float | None, what: str) -> Any:
        workflow_id = f"{LOOKUP_PREFIX}{uuid.uuid4().hex}"
        wait = self.outcome_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(wait):
                return await self._client.execute_workflow(
                    run,
                    query,
                    id=workflow_id,
                    task_queue=self.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    # Nobody waits longer: a look-up left behind must not linger.
                    execution_timeout=LOOKUP_EXECUTION_TIMEOUT,
                    **summaries.lookup(what).start_options(),
                )
        except TimeoutError:
            raise KartuTimeout(
                f"the provider's answer on {what} did not come within {wait:g} s ({workflow_id})"
            ) from None
        except WorkflowFailureError as err:
            raise KartuError(f"look-up of {what} failed: {err.cause or err}") from None
        except RPCError as err:
            raise _unavailable(err) from None
