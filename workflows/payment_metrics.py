"""Business metrics of the payment workflows, through ``workflow.metric_meter()``.

Free of I/O, and nothing here steers the workflow. The SDK's meter records nothing while a
workflow replays; but a workflow task whose completion Temporal refuses (a callback arrived as
the workflow completed: UnhandledCommand) is run again after the run is evicted, *not* as a
replay, and its transitions would count twice (measured: 7 of 110 payments in a bench run).
So each count is keyed by the run and the transition's place in its history, and a key this
worker process has counted is not counted again (``_first_time``, bounded). What remains is
at-least-once: a task re-run by another worker process. The worker's Runtime exports the
counters (``telemetry.metrics``); without one (tests) the meter does nothing.

Every series carries the SDK's namespace, task_queue and workflow_type, plus only ``flow`` and
``status`` / ``kind``: bounded enums, never a payment id, a customer id or card data.

- ``kartu_payments_started_total{flow}``: payment workflows begun.
- ``kartu_payments_ended_total{flow,status}``: once per payment, the first end status it reaches
  (PAID, CAPTURED, DECLINED, FAILED, VOIDED, EXPIRED, REFUNDED). Money put back afterwards (a
  merchant's refusal, a success past the deadline, a cancel) is not a second end: it shows in
  ``kartu_compensations_total`` and ``kartu_payment_transitions_total``.
- ``kartu_payment_transitions_total{flow,status}``: every status a payment enters (CHALLENGE,
  AUTHORIZED, PENDING_PROVIDER, NEEDS_ATTENTION too).
- ``kartu_payment_amount_idr_total{flow,status}``: whole rupiah of the payments entering each
  status (the captured amount for CAPTURED, the refunded one for REFUNDED, the authorized one
  for AUTHORIZED, else the payment's amount).
  The Refund workflow may report its own as ``flow="REFUND"`` (``refund_transitioned``).
- ``kartu_compensations_total{flow,kind}``: compensations begun (``refund`` / ``void``; a void
  that finds the hold captured carries on as a refund, still counted once, as ``void``). An
  expiry's void is not one (the hold's normal end, counted as EXPIRED), unless a cancel
  resumes it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from decimal import Decimal

from temporalio import workflow

from . import search_attributes as sa

with workflow.unsafe.imports_passed_through():
    from .models import PaymentState, PaymentStatus, RefundState

END_STATUSES = frozenset(
    {
        PaymentStatus.PAID,
        PaymentStatus.CAPTURED,
        PaymentStatus.DECLINED,
        PaymentStatus.FAILED,
        PaymentStatus.VOIDED,
        PaymentStatus.EXPIRED,
        PaymentStatus.REFUNDED,
    }
)


# Counter names (exported with ``_total``) and their help text.
_HELP = {
    "kartu_payments_started": "Payment workflows started",
    "kartu_payments_ended": "Payments by the first end status they reached",
    "kartu_payment_transitions": "Statuses entered by payments",
    "kartu_payment_amount_idr": "Whole rupiah of the payments entering each status",
    "kartu_compensations": "Compensations begun (money put back: refund or void)",
}


# Counts made by this process, by (run id, what, history length): see the module's docstring.
# ``workflows`` is passed through the sandbox, so this is one map for every run; runs execute on
# several threads, hence the lock.
_COUNTED: OrderedDict[tuple[str, str, int], None] = OrderedDict()
_COUNTED_MAX = 100_000
_COUNTED_LOCK = threading.Lock()


def started(state: PaymentState) -> None:
    if _first_time("started", 0):
        _add("kartu_payments_started", 1, {"flow": state.flow.value})


def transitioned(state: PaymentState) -> None:
    """After ``state`` entered ``state.status`` (its last transition is recorded)."""
    if not _first_time("transition", len(state.history)):
        return
    status = state.status
    labels = {"flow": state.flow.value, "status": status.value}
    _add("kartu_payment_transitions", 1, labels)
    _add("kartu_payment_amount_idr", sa.whole_rupiah(_amount(state, status)), labels)
    if status in END_STATUSES and not _ended_before(state):
        _add("kartu_payments_ended", 1, labels)


def compensation_started(state: PaymentState, kind: str) -> None:
    if _first_time("compensation", len(state.history)):
        _add("kartu_compensations", 1, {"flow": state.flow.value, "kind": kind})


def refund_transitioned(state: RefundState) -> None:
    """For the Refund workflow (a merchant's or ops' refund, not a compensation), after its
    transition: counted as ``flow="REFUND"`` in the transitions and amounts above."""
    if not _first_time("transition", len(state.history)):
        return
    labels = {"flow": "REFUND", "status": state.status.value}
    _add("kartu_payment_transitions", 1, labels)
    _add("kartu_payment_amount_idr", sa.whole_rupiah(state.amount), labels)


def _first_time(what: str, position: int) -> bool:
    if workflow.unsafe.is_replaying():
        return False  # the meter would drop it anyway; do not let a replay fill the map
    key = (workflow.info().run_id, what, position)
    with _COUNTED_LOCK:
        if key in _COUNTED:
            return False
        _COUNTED[key] = None
        if len(_COUNTED) > _COUNTED_MAX:
            _COUNTED.popitem(last=False)
    return True


def _add(name: str, value: int, labels: dict[str, str]) -> None:
    if value > 0:
        workflow.metric_meter().create_counter(name, _HELP[name]).add(value, labels)


def _ended_before(state: PaymentState) -> bool:
    # The history holds every transition, the current one last.
    return any(t.to_status in END_STATUSES for t in state.history[:-1])


def _amount(state: PaymentState, status: PaymentStatus) -> Decimal:
    if status is PaymentStatus.CAPTURED:
        return state.captured_amount or state.amount
    if status is PaymentStatus.REFUNDED:
        return state.refunded_amount or state.captured_amount or state.amount
    if status is PaymentStatus.AUTHORIZED:
        return state.authorized_amount or state.amount
    return state.amount
