"""The chaos run's N-worker logic without a stack: who is killed when, what counts as in flight
at a kill and as quiet before it, and that the report's pass line holds workers to account."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bench.chaos import ChaosReport, Drive, Flow, series_lines
from bench.chaos_workers import (
    Disruption,
    Spread,
    Timing,
    WorkerFigures,
    failover_figures,
    moments,
    victim,
    worker_series,
)


def test_kills_go_to_the_workers_in_turn() -> None:
    assert [victim(k, 3) for k in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert [victim(k, 1) for k in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError):
        victim(0, 0)


def test_worker_series_is_parsed_and_checked() -> None:
    assert worker_series("1,2,3") == [1, 2, 3]
    assert worker_series(" 2 , 1 ") == [2, 1]
    for bad in ("", "0,1", "1,x", "-1"):
        with pytest.raises(ValueError):
            worker_series(bad)


def test_spread_uses_nearest_rank_percentiles() -> None:
    spread = Spread.of([float(v) for v in range(1, 101)])
    assert (spread.n, spread.p50_s, spread.p99_s, spread.max_s) == (100, 50.0, 99.0, 100.0)
    assert Spread.of([]).n == 0 and Spread.of([]).text() == "none"


def _t(pid: str, began: float, ended: float | None) -> Timing:
    return Timing(pid, began, ended)


def test_in_flight_at_a_kill_against_the_quiet_before_it() -> None:
    timings = [
        _t("quiet1", 1.0, 2.0),  # 1 s, before the kill
        _t("quiet2", 2.0, 4.0),  # 2 s
        _t("caught", 9.0, 17.0),  # 8 s: started before the kill at 10, ended after it
        _t("started_at_kill", 10.0, 11.0),  # not in flight: began at the kill, not before
        _t("after", 12.0, 13.0),  # neither
        _t("ended_at_kill", 8.0, 10.0),  # ended at the kill's moment: caught (>= at)
    ]
    kill = Disruption("kill", 10.0, over_s=12.0, worker=1)
    figures = failover_figures(timings, [kill])
    assert figures.in_flight.n == 2 and figures.in_flight.max_s == 8.0
    assert figures.quiet.n == 2 and figures.quiet.p99_s == 2.0
    assert figures.extra_p99_s == 6.0
    assert figures.extra_p50_s == 0.0  # p50 of [2, 8] is 2, of the quiet moments 2
    assert len(figures.kills) == 1 and figures.kills[0].worker == 1


def test_quiet_payments_weigh_as_much_as_they_last_as_at_a_kill() -> None:
    # Four 1 s payments and one of 8 s: a kill is 4 times likelier to catch the long one than
    # a given short one, and so are the quiet moments.
    short = [_t(f"s{i}", float(i), i + 1.0) for i in range(4)]
    timings = [*short, _t("long", 10.0, 18.0)]
    figures = failover_figures(timings, [Disruption("kill", 20.0, over_s=21.0, worker=1)])
    assert figures.quiet.n == 5
    assert figures.quiet.p50_s == 8.0  # unweighted it would be 1.0
    assert moments(0.0, 1.0) == [0.25, 0.75] and moments(1.0, 1.0) == []
    assert moments(float("inf"), 5.0) == []


def test_the_quiet_period_begins_once_the_previous_event_is_over() -> None:
    timings = [
        _t("slowed_by_restart", 5.5, 6.5),  # began before the restart was over (6.0)
        _t("quiet", 6.5, 8.0),
        _t("caught", 9.0, 12.0),
    ]
    events = [
        Disruption("restart", 5.0, over_s=6.0),
        Disruption("kill", 10.0, over_s=11.0, worker=2),
    ]
    figures = failover_figures(timings, events)
    assert figures.quiet.n == 1 and figures.quiet.max_s == 1.5
    # A restart is no kill: nothing is counted as in flight at it.
    assert [k.worker for k in figures.kills] == [2]


def test_an_event_never_over_leaves_no_quiet_period_after_it() -> None:
    timings = [_t("after_lost_kill", 6.0, 7.0), _t("caught", 9.0, 12.0)]
    events = [
        Disruption("kill", 5.0, over_s=None, worker=1),
        Disruption("kill", 10.0, over_s=11.0, worker=2),
    ]
    figures = failover_figures(timings, events)
    assert figures.kills[1].quiet.n == 0
    assert figures.extra_p99_s is None  # no quiet figures to compare with


def test_a_payment_in_flight_at_two_kills_counts_once_and_failures_are_counted() -> None:
    long = Timing("long", 1.0, 30.0, first_timed_out=True)
    timings = [long, _t("failed", 4.0, None), _t("quiet", 0.0, 1.0)]
    events = [
        Disruption("kill", 5.0, over_s=6.0, worker=1),
        Disruption("kill", 20.0, over_s=21.0, worker=2),
    ]
    figures = failover_figures(timings, events)
    assert figures.in_flight.n == 1 and figures.in_flight.max_s == 29.0
    assert figures.unfinished == 1 and figures.kills[0].unfinished == 1
    assert figures.slowest == ["long () 29.0 s"] and figures.timed_out == 1
    assert [k.in_flight.n for k in figures.kills] == [1, 1]


def test_drive_timing_is_relative_to_the_drive_start() -> None:
    drive = Drive("p1", Flow.DIRECT, Decimal("1000"))
    assert drive.timing(100.0) is None
    drive.began, drive.ended = 101.0, 103.5
    assert drive.timing(100.0) == Timing("p1", 1.0, 3.5, "direct")
    drive.ended = None
    assert drive.timing(100.0) == Timing("p1", 1.0, None, "direct")


def _clean_report() -> ChaosReport:
    report = ChaosReport(payments=0, seed=0)
    report.reconciliation.ran = True
    return report


def test_a_worker_that_died_by_itself_or_never_came_back_fails_the_run() -> None:
    report = _clean_report()
    assert report.passed
    report.workers.unexpected_exits = 1
    assert not report.passed
    report.workers.unexpected_exits = 0
    report.workers.not_back = 1
    assert not report.passed


def test_report_lines_show_the_workers_failover_and_flows() -> None:
    report = _clean_report()
    report.workers = WorkerFigures(
        count=3,
        events=[
            Disruption("kill", 1.0, over_s=3.0, worker=1),
            Disruption("kill", 8.0, over_s=9.0, worker=2),
        ],
    )
    report.failover = failover_figures(
        [_t("q", 0.0, 0.5), _t("c", 0.8, 6.0)], report.workers.events
    )
    report.flows_per_s, report.flows_seconds = 2.5, 10.0
    text = "\n".join(report.lines())
    assert "3 (killed in turn: 1, 2; polling again after p50 1.0 s, max 2.0 s)" in text
    assert "extra delay (p99 - quiet)   4.70 s (p50 - quiet p50: 4.70 s)" in text
    assert "quiet moments before them   1, p50 0.50 s" in text
    assert "(quiet periods 1.0-5.0 s)" in text
    assert "2.50 (0 payments driven in 10.0 s" in text
    assert report.to_json()["failover"]["extra_p99_s"] == 4.7
    (line,) = series_lines([report])
    assert line.startswith("3 worker(s)") and line.endswith("differing 0: PASS")
