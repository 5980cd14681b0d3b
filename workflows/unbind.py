"""Unbind a card token: UNBOUND | FAILED. Workflow id ``unbind-<card_key(cardToken)>``.

The transactionId key is a digest of the token (``ids.card_key``): 40 characters would not fit
and the token stays out of provider logs. The n-th unbind of a token (after one ended FAILED, or
for a card registered again with the same token) sends step ``unb<n>`` (``UnbindInput.attempt``):
Ayoconnect replays its stored first answer for a spent transactionId.

Only a definite answer ends it. A call without one (an outage, a credential rotation longer than
the activity's retries) is resent, the very same request, on a backoff for
``policies.UNBIND_MAX_ROUNDS`` rounds. Before it ends FAILED, the cards list is asked: a token it
shows DISABLED is unbound, whatever the lost or refused answer said.
"""

from __future__ import annotations

from temporalio import workflow

from . import ids, journal, policies
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
        self.state = UnbindState(
            workflow_id=info.workflow_id, customer_id=unbind.customer_id, attempt=unbind.attempt
        )
        self.provider = Provider(
            key=ids.card_key(unbind.card_token),
            customer_id=unbind.customer_id,
            correlation_id=ids.correlation_id(info.workflow_id),
        )
        self.step = ids.attempt_step(ids.Step.UNBIND, unbind.attempt)

    @workflow.run
    async def run(self, unbind: UnbindInput) -> UnbindState:
        failure = await self._rounds()
        if failure is not None:
            await self._fail_unless_disabled(*failure)
        return self.state

    async def _rounds(self) -> tuple[str, str | None] | None:
        """Unbind until a definite answer; None once UNBOUND, else (why not, error type)."""
        delays = policies.unbind_round_delays()
        last: tuple[str, str | None] = ("no unbind round ran", None)
        for n in range(policies.UNBIND_MAX_ROUNDS):
            if n:
                await workflow.sleep(next(delays), summary="unbind retry")
            try:
                response = await self.provider.unbind(self.input.card_token, self.step)
            except ProviderError as err:
                if err.failure.final:
                    return f"unbind failed: {err}", err.failure.error_type
                why = f"no definite unbind answer after {n + 1} rounds: {err}"
                last = (why, err.failure.error_type)
                workflow.logger.warning("unbind round %d without an answer: %s", n + 1, err)
                continue
            if response.status is CardStatus.DISABLED:
                journal.transition(self.state, UnbindStatus.UNBOUND, "card token disabled")
                return None
            return f"card is still {response.status.value}", None
        return last

    async def _fail_unless_disabled(self, reason: str, error_type: str | None) -> None:
        # A refusal or a lost answer may hide an unbind that took effect (an earlier attempt,
        # the merchant's own app): the cards list is the provider's truth about the token.
        try:
            cards = (await self.provider.list_cards()).cards
        except ProviderError as err:
            workflow.logger.warning("cards list after a failed unbind: %s", err)
            cards = []
        if any(
            c.cardToken == self.input.card_token and c.status is CardStatus.DISABLED for c in cards
        ):
            journal.transition(
                self.state, UnbindStatus.UNBOUND, f"cards list shows the token disabled ({reason})"
            )
            return
        self.state.failure = reason
        self.state.error_type = error_type
        journal.transition(self.state, UnbindStatus.FAILED, reason)

    @workflow.query(name="state")
    def query_state(self) -> UnbindState:
        return self.state
