"""UnmatchedCallback: a signed, well-formed Ayoconnect callback that no running workflow took,
stored durably by the gateway (id ``callback-<transactionId>-<digest of the body>``, so a
redelivery is the same workflow) and checked once.

    run: a PAYMENT callback naming a Kartu payment → observe the payment (Kartu's state and the
         provider's status: the callback is a hint, the status API is the truth) → the
         reconciliation rule → a difference still there after ``confirm_after`` is raised
         (running payment: signal; closed: ``PaymentReview``)
         a PAYMENT callback for a payment Kartu does not know, claiming money: a review
         anything else (binding callbacks, unroutable transactionIds): recorded as is

Its memo (``UnmatchedCallbackMemo``: type, transactionId, status, what it found; no card data,
and encrypted by Kartu's codec like every payload) is what ``GET /callbacks/unmatched`` and the
reconciliation report list. The callback itself (a binding's card token included) stays in the
encrypted input.
"""

from __future__ import annotations

from temporalio import workflow

from . import search_attributes as sa
from .reconcile_rules import callback_claims_money, callback_note
from .reconcile_steps import Checked, Checker, lookup_key

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import PaymentCallback

    from .reconcile_rules import Comparison
    from .reconciliation_models import (
        CALLBACK_FLOW,
        DEFAULT_CONFIRM_AFTER,
        PaymentRef,
        UnmatchedCallbackInput,
        UnmatchedCallbackState,
        Verdict,
        callback_memo,
    )

MEMO_KEY = "callback"


@workflow.defn(name="UnmatchedCallback")
class UnmatchedCallbackWorkflow:
    @workflow.init
    def __init__(self, request: UnmatchedCallbackInput) -> None:
        info = workflow.info()
        self.state = UnmatchedCallbackState(
            workflow_id=info.workflow_id, memo=callback_memo(request)
        )
        seed = f"{info.workflow_id}/{info.first_execution_run_id}"
        self.checker = Checker(lookup_key("cb", seed), 0, DEFAULT_CONFIRM_AFTER, batch_size=1)

    @workflow.run
    async def run(self, request: UnmatchedCallbackInput) -> UnmatchedCallbackState:
        workflow.upsert_search_attributes(sa.updates(flow=CALLBACK_FLOW))
        workflow.set_current_details(self._details("checking against Kartu and the provider"))
        self.state.memo.finding = await self._check(request)
        workflow.upsert_memo({MEMO_KEY: self.state.memo})
        workflow.set_current_details(self._details(self.state.memo.finding))
        return self.state

    def _details(self, what: str) -> str:
        """The Temporal UI's view of this callback (metadata, never replayed as a command):
        what arrived, for whom, and what the check found. No card data: the memo has none."""
        m = self.state.memo
        head = f"**{m.type} callback** · {m.status} · transactionId {m.transaction_id}"
        routed = f"\n\npayment {m.payment_id}" if m.payment_id else ""
        return f"{head}{routed}\n\n{m.reason or 'no running workflow took it'}\n\n{what}"

    async def _check(self, request: UnmatchedCallbackInput) -> str:
        callback = request.callback
        payment_id = self.state.memo.payment_id
        if not isinstance(callback, PaymentCallback):
            return (
                "binding callback for no running registration: recorded (a registration "
                "confirms every binding against the provider's cards list)"
            )
        if payment_id is None:
            return "transactionId names no Kartu payment: recorded only"
        ref = PaymentRef(payment_id=payment_id, workflow_id=f"payment-{payment_id}")
        checked = (await self.checker.check([ref]))[0]
        self.state.observation = checked.observation
        if checked.observation.kartu_missing:
            return await self._unknown_payment(checked, str(callback.status))
        comparison = checked.comparison
        self.state.verdict = comparison.verdict
        self.state.differences = list(comparison.differences)
        note = callback_note(str(callback.status), checked.observation.provider)
        finding = self._describe(checked, comparison)
        if comparison.verdict is Verdict.DIFFER:
            raised = await self.checker.raise_differences(self.state.workflow_id, [checked])
            self.state.raised = raised.get(payment_id)
            finding += f" [{self.state.raised}]"
        return f"{finding}; {note}" if note else finding

    async def _unknown_payment(self, checked: Checked, status: str) -> str:
        """No Kartu workflow by that id: the provider cannot even be asked (no customer id).
        A callback claiming money for it is raised for ops; anything else is recorded."""
        self.state.verdict = Verdict.UNKNOWN
        if not callback_claims_money(status):
            return f"no Kartu payment {checked.payment_id}; the callback says {status}: recorded"
        difference = (
            f"a callback says {status} for a payment Kartu does not know "
            "(unconfirmed: no customer id to ask the provider with)"
        )
        self.state.verdict = Verdict.DIFFER
        self.state.differences = [difference]
        raising = Checked(checked.observation, Comparison(Verdict.DIFFER, (difference,)))
        raised = await self.checker.raise_differences(self.state.workflow_id, [raising])
        self.state.raised = raised.get(checked.payment_id)
        return f"{difference} [{self.state.raised}]"

    @staticmethod
    def _describe(checked: Checked, comparison: Comparison) -> str:
        o = checked.observation
        kartu = o.kartu.status.value if o.kartu else "?"
        provider = o.provider.status.value if o.provider else o.provider_outcome
        if comparison.verdict is Verdict.AGREE:
            return f"agrees: Kartu {kartu}, provider {provider}"
        if comparison.verdict is Verdict.DIFFER:
            return "differs: " + "; ".join(comparison.differences)
        return f"{comparison.verdict.value.lower().replace('_', ' ')}: {comparison.reason}"

    @workflow.query(name="state")
    def query_state(self) -> UnmatchedCallbackState:
        return self.state
