"""Reconciliation's steps inside a workflow, shared by ``Reconciliation`` and
``UnmatchedCallback``: observe payments in batches (Kartu's state and the provider's), apply the
rule, look again at what is doubtful before raising it, raise what still differs.

Every look-up's transactionId is chosen here: ``<key>-<n>``, ``key`` a digest of the workflow
id and its first run id (``lookup_key``), ``n`` a counter carried across continue-as-new, so a
retried activity resends the same id and no two look-ups share one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

from . import ids

with workflow.unsafe.imports_passed_through():
    from .reconcile_rules import Comparison, compare
    from .reconciliation_models import (
        OBSERVE,
        RAISE,
        Observation,
        ObserveCall,
        ObserveItem,
        ObserveResult,
        PaymentRef,
        RaiseCall,
        RaiseItem,
        RaiseResult,
        Verdict,
    )

T = TypeVar("T")

NOT_RAISED = "NOT raised"
_LIST_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
LIST_OPTIONS = {
    "start_to_close_timeout": timedelta(seconds=60),
    "schedule_to_close_timeout": timedelta(minutes=10),
    "retry_policy": _LIST_RETRY,
}
# A batch reads up to 200 payments (a query and a look-up each): long, so it heartbeats.
OBSERVE_OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=15),
    "schedule_to_close_timeout": timedelta(hours=1),
    "heartbeat_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=5,
    ),
}
# Raising is what reconciliation is for: it retries for an hour before a difference is reported
# as not raised (and the run fails, so the schedule shows it).
RAISE_OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=2),
    "schedule_to_close_timeout": timedelta(hours=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=2),
    ),
}


def lookup_key(prefix: str, seed: str) -> str:
    """``<prefix><12 hex>``: the transactionId key of one reconciliation (or callback check)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()[:12]
    return ids.validate_key(prefix + digest, "look-up key")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Checked:
    observation: Observation
    comparison: Comparison

    @property
    def payment_id(self) -> str:
        return self.observation.ref.payment_id

    def raise_item(self) -> RaiseItem:
        o = self.observation
        kartu = o.kartu
        return RaiseItem(
            payment_id=o.ref.payment_id,
            workflow_id=o.ref.workflow_id,
            running=o.ref.running,
            kartu_status=kartu.status.value if kartu else None,
            provider_status=o.provider.status.value if o.provider else None,
            differences=list(self.comparison.differences),
            customer_id=kartu.customer_id if kartu else None,
            amount=kartu.amount if kartu else None,
            invoice_number=kartu.invoice_number if kartu else None,
        )


def doubtful(checked: Checked) -> bool:
    """Looked at again before it counts: a difference (the payment's workflow may be catching
    up), or a provider that gave no answer (a blip)."""
    c, o = checked.comparison, checked.observation
    return c.verdict is Verdict.DIFFER or (
        c.verdict is Verdict.UNKNOWN and o.provider_outcome == "unavailable"
    )


class Checker:
    def __init__(
        self, key: str, lookups: int, confirm_after: timedelta, batch_size: int = 50
    ) -> None:
        self.key = key
        self.lookups = lookups
        self.confirm_after = confirm_after
        self.batch_size = batch_size

    def _next_tid(self) -> str:
        self.lookups += 1
        return ids.transaction_id(self.key, str(self.lookups))

    async def observe(self, refs: Sequence[PaymentRef]) -> list[Observation]:
        out: list[Observation] = []
        for batch in chunks(refs, self.batch_size):
            items = [ObserveItem(ref=r, lookup_transaction_id=self._next_tid()) for r in batch]
            try:
                result = await workflow.execute_activity(
                    OBSERVE,
                    ObserveCall(items=items),
                    result_type=ObserveResult,
                    summary=f"observe {len(items)} payments",
                    **OBSERVE_OPTIONS,  # type: ignore[arg-type]
                )
                out.extend(result.observations)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                # Reported as unknown, not dropped: the next run looks again.
                why = f"not observed: {err.cause or err}"
                out.extend(
                    Observation(ref=r, observed_at=workflow.now(), kartu_error=why[:300])
                    for r in batch
                )
        return out

    async def check(self, refs: Sequence[PaymentRef]) -> list[Checked]:
        """Observe and compare; what is doubtful is observed again after ``confirm_after``."""
        checked = [Checked(o, compare(o)) for o in await self.observe(refs)]
        again = [c.observation.ref for c in checked if doubtful(c)]
        if not again or self.confirm_after <= timedelta(0):
            return checked
        await workflow.sleep(self.confirm_after, summary="look again before raising")
        second = {o.ref.payment_id: o for o in await self.observe(again)}
        return [
            Checked(second[c.payment_id], compare(second[c.payment_id]))
            if c.payment_id in second
            else c
            for c in checked
        ]

    async def raise_differences(
        self, reconciliation_id: str, checked: Sequence[Checked]
    ) -> dict[str, str]:
        """payment id -> how each difference was raised (or ``NOT raised: why``)."""
        items = [c.raise_item() for c in checked if c.comparison.verdict is Verdict.DIFFER]
        raised: dict[str, str] = {}
        for batch in chunks(items, self.batch_size):
            try:
                result = await workflow.execute_activity(
                    RAISE,
                    RaiseCall(reconciliation_id=reconciliation_id, items=list(batch)),
                    result_type=RaiseResult,
                    summary=f"raise {len(batch)} differences",
                    **RAISE_OPTIONS,  # type: ignore[arg-type]
                )
                raised.update(result.raised)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                for item in batch:
                    raised[item.payment_id] = f"{NOT_RAISED}: {err.cause or err}"[:300]
        return raised
