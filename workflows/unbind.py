"""Unbind a card token: UNBOUND | FAILED. Workflow id ``unbind-<card_key(cardToken)>``.

The transactionId key is a digest of the token (``ids.card_key``): 40 characters would not fit
and the token stays out of provider logs.
"""

from __future__ import annotations

from temporalio import workflow

from . import ids, journal
from .provider import Provider, ProviderError

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import CardStatus

    from .models import UnbindInput, UnbindState, UnbindStatus


@workflow.defn(name="CardUnbind")
class CardUnbindWorkflow:
    @workflow.init
    def __init__(self, unbind: UnbindInput) -> None:
        info = workflow.info()
        self.input = unbind
        self.state = UnbindState(workflow_id=info.workflow_id, customer_id=unbind.customer_id)
        self.provider = Provider(
            key=ids.card_key(unbind.card_token),
            customer_id=unbind.customer_id,
            correlation_id=ids.correlation_id(info.workflow_id),
        )

    @workflow.run
    async def run(self, unbind: UnbindInput) -> UnbindState:
        try:
            response = await self.provider.unbind(unbind.card_token)
        except ProviderError as err:
            self.state.failure = str(err)
            self.state.error_type = err.failure.error_type
            journal.transition(self.state, UnbindStatus.FAILED, f"unbind failed: {err}")
        else:
            if response.status is CardStatus.DISABLED:
                journal.transition(self.state, UnbindStatus.UNBOUND, "card token disabled")
            else:
                self.state.failure = f"card is still {response.status.value}"
                journal.transition(self.state, UnbindStatus.FAILED, self.state.failure)
        return self.state

    @workflow.query(name="state")
    def query_state(self) -> UnbindState:
        return self.state
