"""The payments bench's report: each series' figures, the ratios Kartu / floor and the verdict
against issue 10's targets, the console table, and the README's "### Figures" block.

``bench.payments`` builds its JSON with these functions; this module alone rewrites the README
from such a JSON (``make bench`` runs one, then the other):

    .venv/bin/python -m bench.figures                  # the newest bench/results/payments-*.json
    .venv/bin/python -m bench.figures bench/results/payments-20261201T101500.json

Only the text between ``README_START`` and ``README_END`` is replaced (other parts of the README
are other people's); a README without both markers is refused, never guessed at.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import math
import os
import platform
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
README = ROOT / "README.md"
README_START = "<!-- bench:payments:start -->"
README_END = "<!-- bench:payments:end -->"

# Issue 10, section 1: Kartu within 10 % of the floor's flows/s (direct and auth-capture), and a
# frictionless direct payment's first answer at p50 no more than 1.1x the floor's, at every
# concurrency of one run.
FLOWS_RATIO_MIN = 0.9
FIRST_ANSWER_RATIO_MAX = 1.1
FLOWS = ("direct", "auth_capture")
SIDES = ("kartu", "floor")
TIMES = "\N{MULTIPLICATION SIGN}"  # the README writes ratios as "1.1" and this sign


class MarkersMissing(ValueError):
    """The README has not both bench markers, in order, once each: nothing is rewritten."""


# --- one series --------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1): a value that occurred; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def series_figures(
    *,
    side: str,
    flow: str,
    activities: int,
    first_answer_ms: Sequence[float],
    done_ms: Sequence[float],
    wall_seconds: float,
    failures: int,
) -> dict[str, Any]:
    """One series' row: flows/s over the time its chunks ran, first answer and done percentiles
    (ms) of the flows that ended as expected; failed flows are counted, not timed."""
    flows = len(done_ms)
    return {
        "name": f"{side}-{flow}",
        "side": side,
        "flow": flow,
        "activities_per_flow": activities,
        "flows": flows,
        "failures": failures,
        "wall_seconds": round(wall_seconds, 3),
        "per_second": round(flows / wall_seconds, 2) if wall_seconds > 0 else 0.0,
        "first_answer_p50_ms": _ms(percentile(first_answer_ms, 0.50)),
        "first_answer_p99_ms": _ms(percentile(first_answer_ms, 0.99)),
        "complete_p50_ms": _ms(percentile(done_ms, 0.50)),
        "complete_p99_ms": _ms(percentile(done_ms, 0.99)),
    }


# --- one concurrency: ratios and verdict -------------------------------------------------------


def _find(series: Sequence[dict[str, Any]], side: str, flow: str) -> dict[str, Any]:
    for row in series:
        if row["side"] == side and row["flow"] == flow:
            return row
    raise ValueError(f"no {side} {flow} series")


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return num / den


def evaluate(series: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ratios of one concurrency's four series and each target's verdict.

    A missing ratio (a series with no flow done) fails its target; so does any failed flow,
    as figures over the flows that happened to work are no measurement."""
    k_direct, f_direct = _find(series, "kartu", "direct"), _find(series, "floor", "direct")
    k_auth, f_auth = _find(series, "kartu", "auth_capture"), _find(series, "floor", "auth_capture")
    ratios = {
        "direct_flows": _ratio(k_direct["per_second"], f_direct["per_second"]),
        "auth_capture_flows": _ratio(k_auth["per_second"], f_auth["per_second"]),
        "direct_first_answer_p50": _ratio(
            k_direct["first_answer_p50_ms"], f_direct["first_answer_p50_ms"]
        ),
    }
    checks = {
        "direct_flows": ratios["direct_flows"] is not None
        and ratios["direct_flows"] >= FLOWS_RATIO_MIN,
        "auth_capture_flows": ratios["auth_capture_flows"] is not None
        and ratios["auth_capture_flows"] >= FLOWS_RATIO_MIN,
        "direct_first_answer_p50": ratios["direct_first_answer_p50"] is not None
        and ratios["direct_first_answer_p50"] <= FIRST_ANSWER_RATIO_MAX,
        "no_failures": all(row["failures"] == 0 for row in series),
    }
    return {
        "ratios": {k: None if v is None else round(v, 3) for k, v in ratios.items()},
        "checks": checks,
        "pass": all(checks.values()),
    }


def run_figures(concurrency: int, series: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One concurrency's entry in the report: its series (Kartu, floor for each flow) and
    their evaluation."""
    ordered = [_find(series, side, flow) for flow in FLOWS for side in SIDES]
    return {"concurrency": concurrency, "series": ordered, **evaluate(ordered)}


def failed_targets(report: dict[str, Any], times: str = "x") -> list[str]:
    """Each missed target, in words ("direct flows/s 0.81 < 0.9 at 10 in flight")."""
    missed = []
    for run in report["runs"]:
        at = f"at {run['concurrency']} in flight"
        ratios, checks = run["ratios"], run["checks"]
        for key, label in (("direct_flows", "direct"), ("auth_capture_flows", "auth + capture")):
            if not checks[key]:
                missed.append(f"{label} flows/s {_x(ratios[key])} < {FLOWS_RATIO_MIN} {at}")
        if not checks["direct_first_answer_p50"]:
            value = _x(ratios["direct_first_answer_p50"])
            missed.append(f"first answer p50 {value}{times} > {FIRST_ANSWER_RATIO_MAX}{times} {at}")
        if not checks["no_failures"]:
            failed = sum(row["failures"] for row in run["series"])
            missed.append(f"{failed} failed flow{'s' if failed != 1 else ''} {at}")
    return missed


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


# --- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where the run happened: host, CPU, cores, memory, load average at start, versions."""
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "cpu": None,
        "cores": os.cpu_count(),
        "memory_mb": None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "temporalio": importlib.metadata.version("temporalio"),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.partition(":")[2].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_mb"] = int(line.split()[1]) // 1024
                break
    return info


def git_commit(root: Path = ROOT) -> dict[str, Any]:
    """The checkout's commit and whether it had changes (read only)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 - fixed arguments
                ["git", "-C", str(root), *args],  # noqa: S607 - git from PATH
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


# --- text --------------------------------------------------------------------------------------

SERIES_LABELS = {
    ("kartu", "direct"): "Kartu direct (PAY)",
    ("kartu", "auth_capture"): "Kartu auth + capture",
}


def series_label(row: dict[str, Any]) -> str:
    if row["side"] == "floor":
        n = row["activities_per_flow"]
        return f"floor, {n} no-op activit{'y' if n == 1 else 'ies'}"
    return SERIES_LABELS[(row["side"], row["flow"])]


def _n(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def console_lines(report: dict[str, Any]) -> list[str]:
    """The table the bench prints, then the ratios and the verdict."""
    header = f"{'c':>3}  {'series':<20}{'acts':>5}{'flows/s':>9}{'first p50':>11}{'first p99':>11}"
    header += f"{'done p50':>10}{'done p99':>10}{'fail':>6}"
    lines = [header]
    for run in report["runs"]:
        for row in run["series"]:
            lines.append(
                f"{run['concurrency']:>3}  {row['name']:<20}{row['activities_per_flow']:>5}"
                f"{row['per_second']:>9.2f}{_n(row['first_answer_p50_ms'], 1):>11}"
                f"{_n(row['first_answer_p99_ms'], 1):>11}{_n(row['complete_p50_ms'], 1):>10}"
                f"{_n(row['complete_p99_ms'], 1):>10}{row['failures']:>6}"
            )
    for run in report["runs"]:
        r = run["ratios"]
        lines.append(
            f"{run['concurrency']:>3} in flight: Kartu / floor flows/s direct "
            f"{_x(r['direct_flows'])}, auth-capture {_x(r['auth_capture_flows'])}; "
            f"first answer p50 Kartu direct / floor {_x(r['direct_first_answer_p50'])}x  "
            f"{'PASS' if run['pass'] else 'FAIL'}"
        )
    lines.append(verdict(report))
    return lines


def verdict(report: dict[str, Any]) -> str:
    targets = f"flows/s >= {FLOWS_RATIO_MIN}, first answer p50 <= {FIRST_ANSWER_RATIO_MAX}x"
    if report["pass"]:
        return f"PASS ({targets})"
    return f"FAIL ({targets}): " + "; ".join(failed_targets(report))


def _gib(mb: int | None) -> str:
    return "? GiB" if mb is None else f"{round(mb / 1024)} GiB"


def readme_block(report: dict[str, Any], source: str | None = None) -> str:
    """The Markdown between the README markers: date and machine, the table, the ratios line."""
    m, s, git = report["machine"], report["settings"], report.get("git") or {}
    date = report["at"][:10]
    commit = git.get("commit")
    load = " / ".join(f"{x:.2f}" for x in m["load_average_at_start"])
    where = (
        f"`{m['host']}`: {m.get('cpu') or 'CPU unknown'}, {m['cores']} cores, "
        f"{_gib(m.get('memory_mb'))}, load average {load} at start; Python {m['python']}, "
        f"temporalio {m['temporalio']}"
    )
    if commit:
        where += f", commit `{commit[:10]}`{' with local changes' if git.get('dirty') else ''}"
    from_file = f" (`{source}`)" if source else ""
    intro = (
        f"`bench/payments.py`, {date}{from_file}, on {where}. The whole stack (dev server on "
        f"SQLite, sandbox, gateway, worker) and the benchmark share that machine. "
        f"{s['n']} flows per series after {s['warmup']} warm-up flows; Kartu and its floor "
        f"alternate ({s['order']})."
    )
    rows = [
        "| in flight | series | activities | flows/s | first answer p50 / p99 | done p50 / p99 |",
        "|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        for row in run["series"]:
            rows.append(
                f"| {run['concurrency']} | {series_label(row)} | {row['activities_per_flow']} | "
                f"{row['per_second']:.1f} | {_n(row['first_answer_p50_ms'])} / "
                f"{_n(row['first_answer_p99_ms'])} ms | {_n(row['complete_p50_ms'])} / "
                f"{_n(row['complete_p99_ms'])} ms |"
            )
    flows = "; ".join(
        f"direct {_x(run['ratios']['direct_flows'])}, auth + capture "
        f"{_x(run['ratios']['auth_capture_flows'])} at {run['concurrency']} in flight"
        for run in report["runs"]
    )
    first = ", ".join(
        f"{_x(run['ratios']['direct_first_answer_p50'])}{TIMES} at {run['concurrency']}"
        for run in report["runs"]
    )
    missed = failed_targets(report, TIMES)
    outcome = "**PASS**" if report["pass"] else "**FAIL** (" + "; ".join(missed) + ")"
    ratios = (
        f"Kartu / floor (flows/s): {flows}. First answer p50, Kartu direct / floor: {first} "
        f"in flight. Issue 10's targets (flows/s ≥ {FLOWS_RATIO_MIN}, first answer p50 ≤ "
        f"{FIRST_ANSWER_RATIO_MAX}{TIMES}): {outcome}."
    )
    return "\n\n".join([_wrap(intro), "\n".join(rows), _wrap(ratios)])


LONE_SIGN = re.compile(r" ([-<>+*#|=\N{GREATER-THAN OR EQUAL TO}\N{LESS-THAN OR EQUAL TO}]) ")


def _wrap(paragraph: str) -> str:
    """As the README's hand-written paragraphs: lines of at most 100 characters. A lone sign is
    kept with its neighbours: a line starting "> " or "+ " would turn into a quote or a list."""
    glued = LONE_SIGN.sub("\xa0\\1\xa0", paragraph)  # no-break spaces: textwrap keeps them
    wrapped = textwrap.fill(glued, 100, break_long_words=False, break_on_hyphens=False)
    return wrapped.replace("\xa0", " ")


def rewrite_readme(text: str, block: str) -> str:
    """``text`` with everything between the markers replaced by ``block`` (the markers stay, each
    on its own line, a blank line either side of the block). Raises MarkersMissing."""
    starts, ends = text.count(README_START), text.count(README_END)
    if starts != 1 or ends != 1:
        raise MarkersMissing(
            f"the README must hold {README_START} and {README_END} once each (found "
            f"{starts} and {ends}): put them around the figures the bench writes"
        )
    head, _, rest = text.partition(README_START)
    _old, _, tail = rest.partition(README_END)
    if README_END in head:
        raise MarkersMissing(f"{README_END} comes before {README_START} in the README")
    return f"{head}{README_START}\n\n{block.strip()}\n\n{README_END}{tail}"


def newest_results(results: Path = RESULTS) -> Path:
    found = sorted(results.glob("payments-*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no payments-*.json in {results}: run `python -m bench.payments` first")
    return found[-1]


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ROOT))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(description="rewrite the README's payments figures")
    parser.add_argument("results", nargs="?", type=Path, help="JSON (default: the newest)")
    parser.add_argument("--readme", type=Path, default=README, help="README to rewrite")
    args = parser.parse_args(argv)
    source = args.results or newest_results()
    report = json.loads(source.read_text())
    text = args.readme.read_text()
    try:
        new = rewrite_readme(text, readme_block(report, _display(source)))
    except MarkersMissing as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2
    if new != text:
        args.readme.write_text(new)
    done = "written" if new != text else "unchanged"
    print(f"{args.readme}: figures of {source} ({report['at']}) {done}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
