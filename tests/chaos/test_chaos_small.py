"""The chaos run at CI size (the README's is 1,000 payments, 5 kills): every flow twice through
the full stack (dev server on a SQLite file, sandbox, gateway, worker process) under sandbox
faults, two worker SIGKILLs and one dev server restart, then a long outage of the provider's
status and charge APIs with 3DS payments in flight; then Kartu is reconciled with the sandbox
ledger, and reconciliation itself runs once and must find no difference (``bench/chaos.py``).

Plus the reconciler itself, on hand-made ledgers: it must see what it is there to see.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.chaos import (
    OUTAGE_CHALLENGE_WINDOW,
    ChaosReport,
    Drive,
    Final,
    Flow,
    Pace,
    reconcile,
    run_chaos,
)
from tests.stack_support import free_ports
from workflows.models import PaymentFlow, PaymentState, PaymentStatus

# Every payment's history must replay on a fresh worker: the chaos run once found one that did
# not (a capture update and an activity result in one workflow task, right after a worker
# SIGKILL); the handlers now wait for the state they act on (README, "Chaos"), so a replay
# failure fails this test like any other problem.

# The README run's waits, shortened in the same order: the sandbox ends an abandoned 3DS page
# (10 s) before Kartu's window does (15 s); kills and the restart at least 4 s apart (a killed
# worker's payments wait its 3 s heartbeat timeout, a restarted server answers within ~2 s).
CI_PACE = Pace(session_seconds=10, challenge_window=timedelta(seconds=15), event_gap=4.0)


@pytest.mark.timeout(300)
async def test_chaos_small_run_passes(tmp_path: Path) -> None:
    temporal, sandbox, gateway = free_ports(3)
    ports = {"temporal_port": temporal, "sandbox_port": sandbox, "gateway_port": gateway}
    report = await run_chaos(
        18,  # every flow twice
        kills=2,
        seed=3,
        data_dir=tmp_path,
        settle_timeout=60,
        show_progress=False,
        stack_config=ports,
        pace=CI_PACE,
    )
    print("\n".join(report.lines()), *report.problems, sep="\n")
    assert report.kills == 2 and report.server_restarts == 1
    assert report.faults_injected > 0
    # The long outage really outlasted the windows: its payments waited for the provider.
    outage = report.outage
    assert outage.payments >= 5 and outage.pending_provider == outage.payments
    assert outage.seconds > OUTAGE_CHALLENGE_WINDOW.total_seconds()
    assert report.reconciliation.ran and report.reconciliation.checked >= report.total
    assert report.passed, report.problems


def _final(status: PaymentStatus, flow: Flow = Flow.DIRECT) -> Final:
    state = PaymentState(
        payment_id="p1",
        workflow_id="payment-p1",
        flow=PaymentFlow.AUTH_CAPTURE if flow.authorizes else PaymentFlow.DIRECT,
        status=status,
        amount=Decimal("1000"),
        customer_id="CUSTCHAOS01",
    )
    return Final(Drive("p1", flow, Decimal("1000")), state=state)


def _entry(status: str, *ops: str) -> dict[str, Any]:
    amounts = {"amount": "1000.00", "captured": None, "refunded": None}
    return {
        "status": status,
        "invoiceNumber": "INV1",
        "amounts": amounts,
        "operations": [{"operation": op} for op in ops],
    }


def _check(final: Final, ledger: list[dict[str, Any]]) -> ChaosReport:
    report = ChaosReport(payments=1, seed=0)
    reconcile(final, ledger, report)
    return report


def test_reconcile_agreeing_payment_is_clean() -> None:
    report = _check(_final(PaymentStatus.PAID), [_entry("SUCCESS", "PAY")])
    assert (report.mismatches, report.duplicate_charges, report.missing_compensations) == (0, 0, 0)


def test_reconcile_sees_a_second_charge_and_a_second_refund() -> None:
    report = _check(_final(PaymentStatus.PAID), [_entry("SUCCESS", "PAY", "PAY")])
    assert report.duplicate_charges == 1
    ledger = [_entry("REFUNDED", "PAY", "REFUND", "REFUND")]
    assert _check(_final(PaymentStatus.REFUNDED), ledger).duplicate_refunds == 1


def test_reconcile_sees_money_kept_for_a_failed_payment() -> None:
    report = _check(_final(PaymentStatus.FAILED), [_entry("SUCCESS", "PAY")])
    assert report.missing_compensations == 1 and report.mismatches == 1
    held = _check(_final(PaymentStatus.VOIDED, Flow.AUTH_VOID), [_entry("AUTHORIZED", "AUTHORIZE")])
    assert held.missing_compensations == 1


def test_reconcile_sees_a_status_mismatch() -> None:
    report = _check(_final(PaymentStatus.CAPTURED, Flow.AUTH_CAPTURE), [_entry("VOIDED")])
    assert report.mismatches == 1


def test_report_fails_on_a_decision_during_the_outage_or_a_reconciliation_difference() -> None:
    report = ChaosReport(payments=0, seed=0)
    assert not report.passed  # reconciliation did not run
    report.reconciliation.ran = True
    assert report.passed
    report.outage.decided_during = 1
    assert not report.passed
    report.outage.decided_during = 0
    report.reconciliation.differing = 1
    assert not report.passed
    report.reconciliation.differing = 0
    report.outage.payments = 1  # an outage payment not terminal
    assert not report.passed
