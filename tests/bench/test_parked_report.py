"""The parked-authorization bench's pure parts (``bench/parked_report.py``, ``bench.parked``'s
plan): percentiles, the right-state rule, the expiry timer found in a history, the report's
verdicts. No stack: a bench that says PASS on a wrong run is worse than none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from bench.parked import make_plan
from bench.parked_report import (
    ExpiryTiming,
    Parked,
    RssPeak,
    RunFacts,
    activity_names,
    apply_ledger,
    apply_state,
    expiry_timing,
    lateness,
    lines,
    parse_proc_status,
    peak_parked,
    percentile,
    summarize,
    wrong_reason,
)
from workflows.models import PaymentFlow, PaymentState, PaymentStatus, Transition
from workflows.provider_time import JAKARTA

DEADLINE = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
AUTHORIZED_AT = DEADLINE - timedelta(seconds=60)


def ended_right(capture: bool, **fields: Any) -> Parked:
    """A payment that ended as it should: CAPTURED on both sides, or EXPIRED and VOIDED."""
    values: dict[str, Any] = {
        "authorized": True,
        "closed": "completed",
        "status": "CAPTURED" if capture else "EXPIRED",
        "invoice_number": "INV-1",
        "deadline": DEADLINE,
        "ledger_count": 1,
        "ledger_status": "CAPTURED" if capture else "VOIDED",
        "ledger_invoice": "INV-1",
        "ledger_captured": Decimal("150000") if capture else None,
    }
    values.update(fields)
    return Parked("pk_1", capture=capture, **values)


# --- percentiles ------------------------------------------------------------------------------


def test_percentile_is_nearest_rank_of_what_occurred() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    # Few values: p99 is the worst one, never an interpolation below it.
    assert percentile([0.2, 3.0, 0.1], 0.99) == 3.0
    assert percentile([0.7], 0.5) == 0.7
    assert percentile([], 0.5) is None


# --- the right-state rule ---------------------------------------------------------------------


@pytest.mark.parametrize("capture", [True, False], ids=["captured", "expired"])
def test_a_payment_that_ended_right_is_not_wrong(capture: bool) -> None:
    assert wrong_reason(ended_right(capture)) is None


@pytest.mark.parametrize(
    ("capture", "fields", "says"),
    [
        (False, {"status": "AUTHORIZED"}, "Kartu says AUTHORIZED, expected EXPIRED"),
        (False, {"status": "VOIDED"}, "Kartu says VOIDED, expected EXPIRED"),
        (True, {"status": "EXPIRED"}, "Kartu says EXPIRED, expected CAPTURED"),
        (False, {"ledger_status": "AUTHORIZED"}, "ledger says AUTHORIZED, expected VOIDED"),
        (True, {"ledger_status": "VOIDED"}, "ledger says VOIDED, expected CAPTURED"),
        (False, {"ledger_count": 2}, "2 payments at the sandbox"),
        (False, {"ledger_count": 0}, "0 payments at the sandbox"),
        (False, {"ledger_invoice": "INV-2"}, "INV-1 in Kartu, INV-2 at the sandbox"),
        (True, {"ledger_captured": Decimal("1")}, "captured 1, expected 150000"),
        (False, {"closed": None}, "workflow still running"),
        (False, {"closed": "failed"}, "workflow failed"),
        (False, {"start_error": "first answer DECLINED"}, "not authorized: first answer"),
        (True, {"capture_error": "refused: expired"}, "capture before expiry failed"),
        (False, {"read_error": "history: not found"}, "could not be read back"),
    ],
)
def test_every_kind_of_wrong_end_is_caught(
    capture: bool, fields: dict[str, Any], says: str
) -> None:
    why = wrong_reason(ended_right(capture, **fields))
    assert why is not None and says in why


def test_the_ledger_entry_gives_status_invoice_amount_and_who_released_the_hold() -> None:
    p = Parked("pk_1", capture=False)
    entry = {
        "status": "VOIDED",
        "invoiceNumber": "INV-1",
        "amounts": {"amount": "150000.00", "captured": None},
        "operations": [{"operation": "AUTHORIZE"}, {"operation": "EXPIRE"}],
    }
    apply_ledger(p, [entry])
    assert (p.ledger_count, p.ledger_status, p.ledger_invoice) == (1, "VOIDED", "INV-1")
    assert p.ledger_captured is None and p.ledger_release == "EXPIRE"

    captured = Parked("pk_2", capture=True)
    entry = {**entry, "status": "CAPTURED", "amounts": {"captured": "150000.00"}}
    apply_ledger(captured, [{**entry, "operations": [{"operation": "CAPTURE"}]}])
    assert captured.ledger_captured == Decimal("150000") and captured.ledger_release is None

    doubled = Parked("pk_3", capture=False)
    apply_ledger(doubled, [entry, entry])
    assert doubled.ledger_count == 2 and doubled.ledger_status is None
    assert "2 payments" in (wrong_reason(ended_right(False, ledger_count=2)) or "")


def test_the_final_state_gives_deadline_and_transition_times() -> None:
    expired_at = DEADLINE + timedelta(seconds=0.3)
    state = PaymentState(
        payment_id="pk_1",
        workflow_id="payment-pk_1",
        flow=PaymentFlow.AUTH_CAPTURE,
        status=PaymentStatus.EXPIRED,
        amount=Decimal("150000"),
        customer_id="CUST1",
        invoice_number="INV-1",
        # The provider's wall clock without an offset: Jakarta time, as Kartu reads it.
        authorization_expires_at=DEADLINE.astimezone(JAKARTA).replace(tzinfo=None),
        history=[
            Transition(at=AUTHORIZED_AT, from_status="PENDING", to_status="AUTHORIZED", reason=""),
            Transition(at=expired_at, from_status="AUTHORIZED", to_status="EXPIRED", reason=""),
        ],
    )
    p = Parked("pk_1", capture=False)
    apply_state(p, state)
    assert p.status == "EXPIRED" and p.invoice_number == "INV-1"
    assert p.deadline == DEADLINE
    assert (p.authorized_at, p.ended_at, p.expired_at) == (AUTHORIZED_AT, expired_at, expired_at)
    assert lateness(p) == {"expired": pytest.approx(0.3)}


# --- the expiry timer in a history ------------------------------------------------------------


def event(event_id: int, kind: EventType.ValueType, at: datetime) -> HistoryEvent:
    e = HistoryEvent(event_id=event_id, event_type=kind)
    e.event_time.FromDatetime(at.astimezone(UTC).replace(tzinfo=None))
    return e


def timer_started(event_id: int, at: datetime, fires_in: timedelta) -> HistoryEvent:
    e = event(event_id, EventType.EVENT_TYPE_TIMER_STARTED, at)
    e.timer_started_event_attributes.start_to_fire_timeout.FromTimedelta(fires_in)
    return e


def timer_ended(
    event_id: int, kind: EventType.ValueType, at: datetime, started: int
) -> HistoryEvent:
    e = event(event_id, kind, at)
    if kind == EventType.EVENT_TYPE_TIMER_FIRED:
        e.timer_fired_event_attributes.started_event_id = started
    else:
        e.timer_canceled_event_attributes.started_event_id = started
    return e


def task_completed(event_id: int, at: datetime) -> HistoryEvent:
    return event(event_id, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, at)


def at(seconds: float) -> datetime:
    return DEADLINE + timedelta(seconds=seconds)


def test_the_window_timer_is_found_and_the_task_after_it_is_when_kartu_acted() -> None:
    # A short unrelated timer first (it ends long before the deadline); the window's timer is
    # started 60 s before the deadline, 30 ms after the task's workflow time.
    history = [
        timer_started(5, at(-70), timedelta(seconds=2)),
        timer_ended(6, EventType.EVENT_TYPE_TIMER_FIRED, at(-68), 5),
        task_completed(9, at(-60)),
        timer_started(10, at(-60), timedelta(seconds=60.03)),
        timer_ended(11, EventType.EVENT_TYPE_TIMER_FIRED, at(0.05), 10),
        event(12, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, at(0.05)),
        event(13, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, at(0.15)),
        task_completed(14, at(0.2)),
        task_completed(20, at(0.9)),
    ]
    # Taken by a worker 0.1 s after the timer fired (the queue's wait), run in 0.05 s.
    timing = ExpiryTiming("timer", at(0.05), at(0.2), picked_at=at(0.15))
    assert expiry_timing(history, DEADLINE) == timing


def test_a_window_ended_by_the_providers_callback_counts_the_task_that_cancelled_it() -> None:
    history = [
        timer_started(10, at(-60), timedelta(seconds=60)),
        event(11, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, at(1.5)),
        task_completed(14, at(1.7)),
        timer_ended(15, EventType.EVENT_TYPE_TIMER_CANCELED, at(1.7), 10),
    ]
    assert expiry_timing(history, DEADLINE) == ExpiryTiming("callback", None, at(1.7))


def test_no_timer_ending_at_the_deadline_gives_no_timing() -> None:
    history = [
        timer_started(5, at(-70), timedelta(seconds=2)),
        timer_ended(6, EventType.EVENT_TYPE_TIMER_FIRED, at(-68), 5),
    ]
    assert expiry_timing(history, DEADLINE) is None


def test_the_provider_calls_of_a_history_are_its_scheduled_activities_in_order() -> None:
    def scheduled(event_id: int, name: str) -> HistoryEvent:
        e = event(event_id, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, at(0))
        e.activity_task_scheduled_event_attributes.activity_type.name = name
        return e

    history = [
        scheduled(5, "create_charge"),
        task_completed(8, at(0)),
        scheduled(9, "payment_status"),
        scheduled(10, "void_payment"),
    ]
    assert activity_names(history) == ["create_charge", "payment_status", "void_payment"]


def test_lateness_is_measured_against_the_deadline_for_expiries_only() -> None:
    timing = ExpiryTiming("timer", at(0.05), at(0.2))
    p = ended_right(False, timing=timing, expired_at=at(0.4))
    assert lateness(p) == {
        "fired": pytest.approx(0.05),
        "acted": pytest.approx(0.2),
        "expired": pytest.approx(0.4),
    }
    assert lateness(ended_right(True, timing=timing, expired_at=at(0.4))) == {}


# --- held at once, RSS ------------------------------------------------------------------------


def test_peak_parked_counts_holds_overlapping_in_time() -> None:
    assert peak_parked([]) == 0
    assert peak_parked([(at(0), at(10)), (at(5), at(15)), (at(12), None)]) == 2
    # One ends as the next starts: never both held.
    assert peak_parked([(at(0), at(10)), (at(10), at(20))]) == 1
    assert peak_parked([(at(0), None), (at(1), None), (at(2), None)]) == 3


def test_proc_status_gives_rss_and_its_peak_in_kb() -> None:
    text = "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  250000 kB\nVmRSS:\t  180000 kB\n"
    assert parse_proc_status(text) == {"VmHWM": 250000, "VmRSS": 180000}
    peak = RssPeak("worker", 42)
    peak.see({"VmRSS": 180000, "VmHWM": 250000})
    peak.see({"VmRSS": 170000, "VmHWM": 250000})
    assert peak.last_kb == 170000 and peak.peak_mb == round(250000 / 1024, 1)


# --- the report -------------------------------------------------------------------------------


def run_of(parked: list[Parked], worker_kb: int = 200 * 1024) -> dict[str, Any]:
    worker = RssPeak("worker", 42)
    worker.see({"VmRSS": worker_kb, "VmHWM": worker_kb})
    facts = RunFacts(settings={"n": len(parked)}, machine={"cpus": 2}, start_seconds=10.0)
    facts.rss = [worker, RssPeak("sandbox", 43)]
    return summarize(parked, facts, at=DEADLINE)


def on_time(seconds: float = 0.1) -> Parked:
    timing = ExpiryTiming("timer", at(seconds / 2), at(seconds))
    return ended_right(False, timing=timing, expired_at=at(seconds + 0.2), events=37)


def test_a_run_that_meets_every_target_passes() -> None:
    report = run_of([on_time(0.1), on_time(0.3), ended_right(True, events=30)])
    assert report["passed"] is True and report["wrong"] == 0
    assert report["verdicts"] == {
        "worker_rss_under_500_mb": True,
        "expiry_acted_p99_under_1_s": True,
        "zero_wrong": True,
    }
    assert report["expiry_lateness_s"]["acted"] == {"count": 2, "p50": 0.1, "p99": 0.3, "max": 0.3}
    assert report["worker_rss_peak_mb"] == 200.0
    assert report["statuses"] == {"capture:CAPTURED": 1, "expire:EXPIRED": 2}
    assert report["history"]["events"]["max"] == 37
    text = "\n".join(lines(report))
    assert "result           PASS" in text and "wrong            0" in text


@pytest.mark.parametrize(
    ("parked", "worker_kb", "failed"),
    [
        ([on_time(), ended_right(True, status="EXPIRED")], 200 * 1024, "zero_wrong"),
        ([on_time(), on_time(1.5)], 200 * 1024, "expiry_acted_p99_under_1_s"),
        ([on_time()], 600 * 1024, "worker_rss_under_500_mb"),
    ],
    ids=["one wrong", "one expiry late", "worker too big"],
)
def test_one_missed_target_fails_the_run(parked: list[Parked], worker_kb: int, failed: str) -> None:
    report = run_of(parked, worker_kb)
    assert report["passed"] is False
    assert [name for name, ok in report["verdicts"].items() if ok is False] == [failed]
    assert "result           FAIL" in "\n".join(lines(report))


def test_the_wrong_ones_are_named_in_the_report() -> None:
    report = run_of([on_time(), ended_right(False, ledger_status="AUTHORIZED")])
    assert report["wrong"] == 1
    assert report["wrong_examples"] == [
        "pk_1: the sandbox's ledger says AUTHORIZED, expected VOIDED"
    ]
    assert "  ! pk_1: the sandbox's ledger says AUTHORIZED" in "\n".join(lines(report))


def test_a_target_not_measured_is_not_met() -> None:
    nothing_expired = run_of([ended_right(True)])
    assert nothing_expired["verdicts"]["expiry_acted_p99_under_1_s"] is None
    assert nothing_expired["passed"] is False
    assert "(acted) < 1 s: n/a" in "\n".join(lines(nothing_expired))

    no_worker = summarize([on_time()], RunFacts(settings={}, machine={}), at=DEADLINE)
    assert no_worker["worker_rss_peak_mb"] is None
    assert no_worker["verdicts"]["worker_rss_under_500_mb"] is None
    assert no_worker["passed"] is False


# --- the plan ---------------------------------------------------------------------------------


def test_the_plan_captures_the_chosen_share_the_same_way_for_a_seed() -> None:
    plan = make_plan(1000, 0.1, seed=7, run="r1")
    assert len(plan) == 1000 and len({p.payment_id for p in plan}) == 1000
    assert sum(p.capture for p in plan) == 100
    assert all(0 <= p.capture_point < 1 for p in plan)
    again = make_plan(1000, 0.1, seed=7, run="r1")
    assert [p.capture for p in again] == [p.capture for p in plan]
    assert sum(p.capture for p in make_plan(10, 0.0, seed=7, run="r1")) == 0
    assert sum(p.capture for p in make_plan(10, 1.0, seed=7, run="r1")) == 10
