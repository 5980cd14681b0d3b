"""``kartu reconcile``: compare recent payments with Ayoconnect, or set up the schedule that does.

    kartu reconcile [--since 24h] [--json]                # once, now: prints the report
    kartu reconcile --schedule [--every 1h] [--since 48h]  # create or update the schedule

Registered in ``starter.cli.parser`` (``add_reconcile_arguments``) and ``commands``
(``cmd_reconcile``); the work itself is ``starter.client.reconcile``. A run that found
differences still exits 0: the report is the answer (every difference was raised). It exits 1
when a difference could not be raised.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starter import output
from starter.output import Fields, Table

from . import console
from .args import duration, seconds
from .errors import Failure, UsageError

if TYPE_CHECKING:
    from starter.client import KartuClient
    from workflows.reconciliation_models import ReconcileReport

DEFAULT_TIMEOUT = 600.0


def add_reconcile_arguments(parser: argparse.ArgumentParser) -> None:
    def window(text: str) -> timedelta:
        from starter.client.reconcile import check_since

        value = duration(text)
        try:
            check_since(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
        return value

    def interval(text: str) -> timedelta:
        from starter.client.reconcile import check_every

        value = duration(text)
        try:
            check_every(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
        return value

    parser.add_argument(
        "--since", type=window, help="look back this far (default 48h, KARTU_RECONCILE_SINCE)"
    )
    parser.add_argument(
        "--schedule",
        action="store_true",
        help="create or update the Temporal Schedule kartu-reconciliation instead of running once",
    )
    parser.add_argument("--every", type=interval, help="with --schedule: how often (default 1h)")
    parser.add_argument(
        "--confirm-after",
        type=duration,
        help="look at a difference again after this long before raising it (default 60s)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        help="wait this long for the report (the run carries on)",
    )


async def cmd_reconcile(args: argparse.Namespace, kartu: KartuClient) -> int:
    from starter.client.reconcile import ReconcileSettings

    if args.every is not None and not args.schedule:
        raise UsageError("--every needs --schedule")
    if args.confirm_after is not None and args.confirm_after > timedelta(hours=1):
        raise UsageError("--confirm-after is at most 1h")
    try:
        settings = ReconcileSettings()
    except ValueError as exc:
        raise UsageError(f"KARTU_RECONCILE_* settings: {exc}") from None
    since = args.since or settings.since
    confirm_after = args.confirm_after or settings.confirm_after
    if args.schedule:
        return await _schedule(args, kartu, since, confirm_after, args.every or settings.every)
    try:
        report = await _run_once(kartu, since, confirm_after, args.timeout)
    except _NotRaised as exc:
        _show(args, exc.report)
        raise Failure(str(exc)) from None
    except TimeoutError as exc:
        raise Failure(str(exc)) from None
    _show(args, report)
    return 0


class _NotRaised(Exception):
    def __init__(self, message: str, report: ReconcileReport) -> None:
        super().__init__(message)
        self.report = report


async def _run_once(
    kartu: KartuClient, since: timedelta, confirm_after: timedelta, timeout: float
) -> ReconcileReport:
    import asyncio

    from temporalio.client import WorkflowFailureError

    from starter.client.reconcile import new_reconciliation_id, run_reconciliation
    from workflows.reconciliation_models import ReconcileReport

    workflow_id = new_reconciliation_id()
    try:
        async with asyncio.timeout(timeout):
            return await run_reconciliation(
                kartu.temporal,
                task_queue=kartu.task_queue,
                since=since,
                confirm_after=confirm_after,
                workflow_id=workflow_id,
            )
    except TimeoutError:
        raise TimeoutError(
            f"{workflow_id} still running after {timeout:g} s; its report so far: "
            f"temporal workflow query --type report -w {workflow_id}"
        ) from None
    except WorkflowFailureError as err:
        handle = kartu.temporal.get_workflow_handle(workflow_id)
        report = await handle.query("report", result_type=ReconcileReport)
        cause = err.cause.message if hasattr(err.cause, "message") else str(err.cause)
        raise _NotRaised(f"{workflow_id}: {cause}", report) from None


async def _schedule(
    args: argparse.Namespace,
    kartu: KartuClient,
    since: timedelta,
    confirm_after: timedelta,
    every: timedelta,
) -> int:
    from starter.client.reconcile import ensure_schedule

    result = await ensure_schedule(
        kartu.temporal,
        task_queue=kartu.task_queue,
        every=every,
        since=since,
        confirm_after=confirm_after,
    )
    pairs = [
        ("schedule", f"{result.schedule_id} ({result.action})"),
        ("every", _duration(result.every)),
        ("window", _duration(result.since)),
        ("task queue", result.task_queue),
        ("paused", result.paused),
        ("next runs", result.next_runs),
    ]
    console.show(getattr(args, "json", False), result, lambda: [Fields(pairs)])
    return 0


def _show(args: argparse.Namespace, report: ReconcileReport) -> None:
    console.show(getattr(args, "json", False), report, lambda: report_doc(report))


def report_doc(report: ReconcileReport) -> list[output.Block]:
    """The report for people: counts, then each difference, then the unmatched callbacks."""
    listed = [
        ("reconciliation", report.reconciliation_id),
        ("window", f"since {report.window_start:%Y-%m-%d %H:%M:%S %Z} ({_duration(report.since)})"),
        ("checked", report.checked),
        ("agreeing", report.agreeing),
        ("differing", len(report.differing)),
        ("unknown at provider", _ids(report.unknown_at_provider)),
        ("in progress", _ids(report.in_progress)),
        ("waiting for ops", _ids(report.needs_attention)),
        ("not in Kartu", _ids(report.kartu_unknown) if report.kartu_unknown else None),
        ("unmatched callbacks", len(report.unmatched_callbacks)),
        ("left out of lists", report.omitted or None),
    ]
    parts: list[output.Block] = [Fields(listed)]
    if report.differing:
        rows: list[dict[str, Any]] = [
            {
                "payment": d.payment_id,
                "kartu": d.kartu_status,
                "provider": d.provider_status,
                "difference": "; ".join(d.differences),
                "raised": d.raised,
            }
            for d in report.differing
        ]
        columns = ["payment", "kartu", "provider", "difference", "raised"]
        parts.append(Table(rows, columns, title="differences:"))
    if report.unmatched_callbacks:
        rows = [
            {
                "received": c.received_at.isoformat(timespec="seconds"),
                "transaction": c.transaction_id,
                "status": c.status,
                "finding": c.finding or "being checked",
            }
            for c in report.unmatched_callbacks
        ]
        columns = ["received", "transaction", "status", "finding"]
        parts.append(Table(rows, columns, title="unmatched callbacks:"))
    return parts


def _ids(ids: list[str]) -> str:
    if not ids:
        return "0"
    shown = ", ".join(ids[:10])
    more = f", ... ({len(ids) - 10} more)" if len(ids) > 10 else ""
    return f"{len(ids)}: {shown}{more}"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
