"""The pure half of ``bench/parked.py``: what one parked authorization ended as, whether that is
right, how late its expiry was, and the run's report with its targets. No I/O here, so a test
checks every rule without a stack (tests/bench/test_parked_report.py).

Expiry lateness is read from the payment's own Temporal history, three ways (each against the
deadline Kartu held: ``authorization_expires_at`` of the payment's final state, the provider's
``authorizationExpiresAt``):

- ``fired``: the ``TimerFired`` event of the authorization-window timer (the server's clock):
  when Temporal woke the payment;
- ``acted``: the first ``WorkflowTaskCompleted`` after it: when Kartu's worker had run the
  expiry code and its first command (the void; a status look-up on executions from before
  the void-first change) was recorded. This includes the task
  queue's backlog, a replay of a payment evicted from the worker's cache, and the worker's CPU;
  it is what the 1 s target is judged on, since a timer that fires on time while the worker
  is minutes behind would expire nothing on time;
- ``expired``: the ``at`` of the payment's EXPIRED transition (workflow time of the task that
  recorded it): ``acted`` plus the void at the provider (and a look-up if it was refused).

A payment whose window the provider closed first (its expiry callback woke the workflow before
the timer) has its timer cancelled: ``acted`` is then the task that cancelled it, ``fired`` is
absent, and its source is ``callback``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from workflows.models import PaymentState, PaymentStatus
from workflows.provider_time import aware_or_none

from .figures import percentile

RSS_LIMIT_MB = 500.0
LATENESS_P99_LIMIT_S = 1.0
WRONG_LIMIT = 0
# Kartu starts the window's timer at (deadline - workflow time of the task), so it ends at the
# deadline plus that task's run; a timer ending this close to the deadline is the window's.
_TIMER_MATCH = (timedelta(seconds=-1), timedelta(seconds=120))
_TIMER_END = {EventType.EVENT_TYPE_TIMER_FIRED: "timer", EventType.EVENT_TYPE_TIMER_CANCELED: ""}
CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
}


@dataclass
class ExpiryTiming:
    source: str  # "timer" (Kartu's window timer) or "callback" (the provider's void came first)
    fired_at: datetime | None
    acted_at: datetime | None
    # The first WorkflowTaskStarted after the timer fired: a worker took the task. ``picked``
    # minus ``fired`` is the task queue's wait; ``acted`` minus ``picked`` the worker's run of it
    # (a payment evicted from the cache: its history fetched and replayed first).
    picked_at: datetime | None = None


@dataclass
class Parked:
    """One authorization of the run: what the bench asked, then what Kartu and the sandbox's
    ledger say it ended as."""

    payment_id: str
    capture: bool  # chosen to be captured before its window ends; else it must expire
    capture_point: float = 0.0  # where in [authorized, deadline - margin] the capture goes
    amount: Decimal = Decimal("150000")
    # while driving
    authorized: bool = False
    first_answer_s: float | None = None
    start_error: str | None = None
    capture_error: str | None = None
    # read back afterwards
    read_error: str | None = None
    closed: str | None = None  # how the workflow closed; None: still running
    status: str | None = None
    invoice_number: str | None = None
    deadline: datetime | None = None
    authorized_at: datetime | None = None
    ended_at: datetime | None = None
    expired_at: datetime | None = None
    timing: ExpiryTiming | None = None
    events: int = 0
    history_bytes: int = 0
    activities: list[str] = field(default_factory=list)  # scheduled, in order (for --dump)
    ledger_count: int = 0
    ledger_status: str | None = None
    ledger_invoice: str | None = None
    ledger_captured: Decimal | None = None
    ledger_release: str | None = None  # the ledger operation that released the hold


def expected_status(p: Parked) -> tuple[str, str]:
    """(Kartu's status, the ledger's status) this payment must end with."""
    return ("CAPTURED", "CAPTURED") if p.capture else ("EXPIRED", "VOIDED")


def wrong_reason(p: Parked) -> str | None:
    """Why this payment did not end as it should, or None when it did."""
    if p.start_error:
        return f"not authorized: {p.start_error}"
    if p.capture and p.capture_error:
        return f"capture before expiry failed: {p.capture_error}"
    if p.read_error:
        return f"could not be read back: {p.read_error}"
    if p.closed != "completed":
        return f"workflow {p.closed or 'still running'}"
    kartu, ledger = expected_status(p)
    if p.status != kartu:
        return f"Kartu says {p.status}, expected {kartu}"
    if p.ledger_count != 1:
        return f"{p.ledger_count} payments at the sandbox for this order, expected 1"
    if p.ledger_status != ledger:
        return f"the sandbox's ledger says {p.ledger_status}, expected {ledger}"
    if p.ledger_invoice != p.invoice_number:
        return f"invoice {p.invoice_number} in Kartu, {p.ledger_invoice} at the sandbox"
    if p.capture and p.ledger_captured != p.amount:
        return f"the sandbox captured {p.ledger_captured}, expected {p.amount}"
    return None


def apply_ledger(p: Parked, entries: Sequence[dict[str, Any]]) -> None:
    """Take what the sandbox's ledger (``GET /_sandbox/ledger``) holds for this order."""
    p.ledger_count = len(entries)
    if len(entries) != 1:
        return
    entry = entries[0]
    p.ledger_status = entry.get("status")
    p.ledger_invoice = entry.get("invoiceNumber")
    captured = (entry.get("amounts") or {}).get("captured")
    p.ledger_captured = None if captured is None else Decimal(captured)
    releases = [
        op["operation"] for op in entry.get("operations", ()) if op["operation"] in RELEASES
    ]
    p.ledger_release = releases[-1] if releases else None


def apply_state(p: Parked, state: PaymentState) -> None:
    """Take the payment's final state: status, invoice, deadline and its transitions' times."""
    p.status = state.status.value
    p.invoice_number = state.invoice_number
    p.deadline = aware_or_none(state.authorization_expires_at)
    for index, move in enumerate(state.history):
        if move.to_status == PaymentStatus.AUTHORIZED and p.authorized_at is None:
            p.authorized_at = move.at
            later = state.history[index + 1 :]
            p.ended_at = later[0].at if later else None
        if move.to_status == PaymentStatus.EXPIRED:
            p.expired_at = move.at


# "VOID": Kartu released the hold; "EXPIRE": the sandbox's own window passed first.
RELEASES = ("VOID", "EXPIRE")


def activity_names(events: Sequence[HistoryEvent]) -> list[str]:
    """The activities a history scheduled, in order (the provider calls Kartu made)."""
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == scheduled
    ]


def event_time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


def expiry_timing(events: Sequence[HistoryEvent], deadline: datetime) -> ExpiryTiming | None:
    """When the authorization-window timer of this history fired and Kartu acted on it (see
    the module's docstring), or None when no timer ended at ``deadline`` (e.g. captured)."""
    window = None
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            attrs = event.timer_started_event_attributes
            ends = event_time(event) + attrs.start_to_fire_timeout.ToTimedelta()
            if _TIMER_MATCH[0] <= ends - deadline <= _TIMER_MATCH[1]:
                window = event.event_id  # the last one: a false provider hint restarts it
    if window is None:
        return None
    for index, event in enumerate(events):
        if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            if event.timer_fired_event_attributes.started_event_id == window:
                fired = event_time(event)
                acted = _task_after(events, index)
                return ExpiryTiming("timer", fired, acted, _task_after(events, index, STARTED))
        elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            if event.timer_canceled_event_attributes.started_event_id == window:
                return ExpiryTiming("callback", None, _task_before(events, index))
    return None


COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED


def _task_after(
    events: Sequence[HistoryEvent], index: int, kind: EventType.ValueType = COMPLETED
) -> datetime | None:
    return next((event_time(e) for e in events[index + 1 :] if e.event_type == kind), None)


def _task_before(events: Sequence[HistoryEvent], index: int) -> datetime | None:
    earlier = reversed(events[:index])
    return next((event_time(e) for e in earlier if e.event_type == COMPLETED), None)


def lateness(p: Parked) -> dict[str, float]:
    """Seconds after the deadline: ``fired``, ``acted``, ``expired`` (those known)."""
    if p.deadline is None or p.capture:
        return {}
    moments = {"expired": p.expired_at}
    if p.timing is not None:
        t = p.timing
        moments |= {"fired": t.fired_at, "picked": t.picked_at, "acted": t.acted_at}
    return {k: (v - p.deadline).total_seconds() for k, v in moments.items() if v is not None}


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float | int | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, digits)

    return {
        "count": len(values),
        "p50": r(percentile(values, 0.50)),
        "p99": r(percentile(values, 0.99)),
        "max": r(max(values, default=None)),
    }


def peak_parked(intervals: Iterable[tuple[datetime, datetime | None]]) -> int:
    """The most authorizations held at once: (authorized, ended) pairs, None: never ended."""
    moves: list[tuple[datetime, int]] = []
    for start, end in intervals:
        moves.append((start, 1))
        if end is not None:
            moves.append((end, -1))
    # At one instant an end comes before a start: a hold released is no longer held.
    moves.sort(key=lambda move: (move[0], move[1]))
    held = peak = 0
    for _, step in moves:
        held += step
        peak = max(peak, held)
    return peak


def parse_proc_status(text: str) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of ``/proc/<pid>/status``, in kB."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


@dataclass
class RssPeak:
    """One watched process: the highest RSS sampled and the kernel's own peak (VmHWM)."""

    part: str
    pid: int
    sampled_kb: int = 0
    hwm_kb: int = 0
    last_kb: int = 0
    samples: int = 0
    gone: bool = False

    def see(self, status: dict[str, int]) -> None:
        self.samples += 1
        self.last_kb = status.get("VmRSS", 0)
        self.sampled_kb = max(self.sampled_kb, status.get("VmRSS", 0))
        self.hwm_kb = max(self.hwm_kb, status.get("VmHWM", 0))

    @property
    def peak_mb(self) -> float:
        return round(max(self.sampled_kb, self.hwm_kb) / 1024, 1)


@dataclass
class RunFacts:
    """What the driver measured besides the payments themselves."""

    settings: dict[str, Any]
    machine: dict[str, Any]
    wall_seconds: float = 0.0
    start_seconds: float = 0.0
    start_retries: int = 0
    capture_retries: int = 0
    rss: list[RssPeak] = field(default_factory=list)
    rss_timeline: list[tuple[float, float]] = field(default_factory=list)  # (s, worker MB)
    side_workflows: dict[str, int | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def summarize(parked: Sequence[Parked], facts: RunFacts, *, at: datetime) -> dict[str, Any]:
    """The run's figures and verdicts, as written to the JSON file."""
    wrong = [(p.payment_id, why) for p in parked if (why := wrong_reason(p)) is not None]
    late: dict[str, list[float]] = {"fired": [], "picked": [], "acted": [], "expired": []}
    for p in parked:
        for name, seconds in lateness(p).items():
            late[name].append(seconds)
    expired = [p for p in parked if not p.capture]
    sources: dict[str, int] = {}
    releases: dict[str, int] = {}
    for p in expired:
        source = p.timing.source if p.timing else "none"
        sources[source] = sources.get(source, 0) + 1
        release = p.ledger_release or "none"
        releases[release] = releases.get(release, 0) + 1
    read = [p for p in parked if p.events]
    workers = [r for r in facts.rss if r.part == "worker"]
    worker_peak = max((r.peak_mb for r in workers), default=None)
    answers = [p.first_answer_s for p in parked if p.first_answer_s is not None]
    authorized = sum(p.authorized for p in parked)
    acted_p99 = percentile(late["acted"], 0.99)
    verdicts = {
        "worker_rss_under_500_mb": None if worker_peak is None else worker_peak < RSS_LIMIT_MB,
        "expiry_acted_p99_under_1_s": None
        if acted_p99 is None
        else acted_p99 < LATENESS_P99_LIMIT_S,
        "zero_wrong": len(wrong) <= WRONG_LIMIT,
    }
    return {
        "at": at.isoformat(timespec="seconds"),
        "machine": facts.machine,
        "settings": facts.settings,
        "wall_seconds": round(facts.wall_seconds, 1),
        "authorizations": {
            "asked": len(parked),
            "authorized": authorized,
            "to_capture": sum(p.capture for p in parked),
            "to_expire": len(expired),
            "start_seconds": round(facts.start_seconds, 1),
            "start_per_second": round(authorized / facts.start_seconds, 1)
            if facts.start_seconds
            else None,
            "start_retries": facts.start_retries,
            "capture_retries": facts.capture_retries,
            "first_answer_s": spread(answers),
            "peak_parked": peak_parked(
                (p.authorized_at, p.ended_at) for p in parked if p.authorized_at is not None
            ),
        },
        "worker_rss_peak_mb": worker_peak,
        "rss_peak_mb": {f"{r.part} ({r.pid})": r.peak_mb for r in facts.rss},
        "rss_gone": [f"{r.part} ({r.pid})" for r in facts.rss if r.gone],
        "worker_rss_timeline_mb": facts.rss_timeline,
        "history": {
            "read": len(read),
            "events": spread([float(p.events) for p in read], 0),
            "bytes": spread([float(p.history_bytes) for p in read], 0),
            "events_expired": spread([float(p.events) for p in read if not p.capture], 0),
            "events_captured": spread([float(p.events) for p in read if p.capture], 0),
            "activities_expired": spread(
                [float(len(p.activities)) for p in read if not p.capture], 0
            ),
        },
        "expiry_lateness_s": {name: spread(values) for name, values in late.items()},
        "expiry_source": sources,
        "hold_released_by": releases,
        "side_workflows": facts.side_workflows,
        "statuses": _count(f"{'capture' if p.capture else 'expire'}:{p.status}" for p in parked),
        "wrong": len(wrong),
        "wrong_examples": [f"{pid}: {why}" for pid, why in wrong[:50]],
        "targets": {
            "worker_rss_mb_below": RSS_LIMIT_MB,
            "expiry_acted_p99_s_below": LATENESS_P99_LIMIT_S,
            "wrong_at_most": WRONG_LIMIT,
        },
        "verdicts": verdicts,
        # A target not measured (no worker found, nothing expired) is not met.
        "passed": all(v is True for v in verdicts.values()),
        "notes": facts.notes,
    }


def _count(values: Iterable[str]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for value in values:
        counted[value] = counted.get(value, 0) + 1
    return dict(sorted(counted.items()))


def _verdict(value: bool | None) -> str:
    return "n/a" if value is None else ("PASS" if value else "FAIL")


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def lines(report: dict[str, Any]) -> list[str]:
    """The report as the terminal shows it."""
    a = report["authorizations"]
    v = report["verdicts"]
    late = report["expiry_lateness_s"]
    h = report["history"]
    out = [
        f"authorizations   {a['authorized']}/{a['asked']} authorized in {a['start_seconds']} s "
        f"({a['start_per_second']}/s, {a['start_retries']} retries), first answer "
        f"p50 {_s(a['first_answer_s']['p50'])} p99 {_s(a['first_answer_s']['p99'])}",
        f"                 {a['to_capture']} to capture, {a['to_expire']} to expire; "
        f"peak held at once {a['peak_parked']}",
        f"worker RSS peak  {report['worker_rss_peak_mb']} MB   (< {RSS_LIMIT_MB:g} MB: "
        f"{_verdict(v['worker_rss_under_500_mb'])})",
        "other parts      "
        + (
            ", ".join(
                f"{k} {mb} MB" for k, mb in report["rss_peak_mb"].items() if "worker" not in k
            )
            or "not watched"
        ),
        f"history          {h['read']} read: events p50 {h['events']['p50']:.0f} max "
        f"{h['events']['max']:.0f}, bytes p50 {h['bytes']['p50']:.0f} max {h['bytes']['max']:.0f}"
        f"; provider calls per expiry p50 {_n(h['activities_expired']['p50'])} max "
        f"{_n(h['activities_expired']['max'])}"
        if h["read"]
        else "history          none read",
    ]
    for name, what in (
        ("fired", "timer fired"),
        ("picked", "task taken "),
        ("acted", "Kartu acted"),
        ("expired", "EXPIRED at  "),
    ):
        s = late.get(name)
        if s is None:  # a report written before this reading existed
            continue
        out.append(
            f"expiry {what}  p50 {_s(s['p50'])}  p99 {_s(s['p99'])}  max {_s(s['max'])}  "
            f"(n={s['count']})"
        )
    out += [
        f"expiry p99 (acted) < {LATENESS_P99_LIMIT_S:g} s: "
        f"{_verdict(v['expiry_acted_p99_under_1_s'])}   woken by {report['expiry_source']}, "
        f"hold released by {report['hold_released_by']}",
        f"final states     {report['statuses']}",
        f"side workflows   {report['side_workflows']}",
        f"wrong            {report['wrong']}   (0: {_verdict(v['zero_wrong'])})",
        f"wall time        {report['wall_seconds']} s",
        f"result           {'PASS' if report['passed'] else 'FAIL'}",
    ]
    out += [f"  ! {example}" for example in report["wrong_examples"][:20]]
    out += [f"  note: {note}" for note in report["notes"]]
    return out
