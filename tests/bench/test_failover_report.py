"""bench/failover.py's judgement, on made-up timings: which payments were in flight at the
kill, the extra delay against the ones before it, and what fails the target."""

from __future__ import annotations

from bench.failover import MAX_EXTRA_DELAY_S, Flow, lines, report, summary


def done(started: float, took: float, status: str = "PAID") -> Flow:
    return Flow(started=started, first_s=took / 2, done_s=took, status=status)


def test_in_flight_means_started_before_the_kill_and_ended_after_it():
    flows = [done(0.0, 0.5), done(1.0, 0.5), done(9.8, 6.0), done(9.9, 0.05), done(10.5, 0.4)]
    r = report(flows, kill_at=10.0)
    assert r.before["n"] == 3 and r.before["p99"] == 0.5  # 9.9 ended (9.95) before the kill
    # 9.8 (ends at 15.8) and 9.9 (ends at 9.95: before the kill) -> only the first is caught.
    assert r.in_flight_count == 1 and r.in_flight["max"] == 6.0
    assert r.extra_delay_p99_s == 5.5
    assert r.passed  # 5.5 s is within MAX_EXTRA_DELAY_S


def test_a_delay_past_the_target_or_a_pending_answer_fails():
    slow = report([done(0.0, 0.5), done(9.0, 0.5 + MAX_EXTRA_DELAY_S + 1)], kill_at=9.5)
    assert not slow.passed
    pending = report([done(0.0, 0.5), done(9.0, 1.0, status="PENDING")], kill_at=9.5)
    assert pending.pending_answers == 1 and not pending.passed
    failed = report([done(0.0, 0.5), Flow(started=9.0, error="KartuTimeout: x")], kill_at=9.5)
    assert failed.failures == 1 and failed.in_flight_count == 1 and not failed.passed
    assert any("FAIL" in line for line in lines(failed))


def test_nothing_in_flight_is_not_a_pass():
    r = report([done(0.0, 0.5)], kill_at=5.0)
    assert r.in_flight == {} and not r.passed


def test_summary_percentiles():
    s = summary([float(i) for i in range(1, 101)])
    assert (s["n"], s["p50"], s["p99"], s["max"]) == (100, 50.5, 99.0, 100.0)
    assert summary([]) == {}
