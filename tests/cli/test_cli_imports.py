"""What a ``kartu`` command imports: each call is a new process, and its imports are most of
its cost (the suite runs the CLI hundreds of times).

- The production CLI never loads the sandbox: importing ``starter.cli`` and running production
  commands against a real stack leaves ``sandbox`` out of ``sys.modules``; the development
  commands (``kartu sandbox ...``) load it on their own path.
- A Temporal command connects through ``starter.connection``, not the worker: no ``worker``,
  ``temporalio.worker``, nor the card encryption (``ayoconnect.security``: joserfc, bcrypt) that
  only the worker's activities, the gateway and the sandbox use.
- A command that ends before connecting (bad usage) or never connects (``kartu sandbox``) loads
  neither ``KartuClient`` nor the connection (reporting its error must not load them either).

Each check runs in a fresh interpreter, so nothing the test process imported counts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cli_stack import ROOT, Up, base_env, new_id

PROBE = """
import contextlib, io, json, sys
from starter.cli import run
codes = []
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    for argv in json.loads(sys.argv[1]):
        try:
            codes.append(run(argv))
        except SystemExit as exit_:  # --help: argparse prints and exits
            codes.append(exit_.code)
watched = json.loads(sys.argv[2])
loaded = sorted(m for m in sys.modules if any(m == w or m.startswith(w + ".") for w in watched))
print(json.dumps({"codes": codes, "loaded": loaded}))
"""

SANDBOX = ("sandbox",)
# What the worker loads and a client must not: the worker module and the SDK's worker runtime,
# the Ayoconnect HTTP client (httpx, which loads its own CLI's click and rich) and the card
# encryption. (The activities module and telemetry.metrics still come with the workflow classes
# the client starts: they name the activities.)
WORKER_SIDE = (
    "worker",
    "temporalio.worker",
    "ayoconnect.client",
    "ayoconnect.security",
    "httpx",
    "joserfc",
    "bcrypt",
)
KARTU_CLIENT = ("starter.client", "starter.connection")
LIFECYCLES = ("workflows.direct_payment", "workflows.auth_capture", "activities", "telemetry")


def probe(env: dict[str, str], *commands: list[str], watched: Sequence[str]) -> dict[str, object]:
    """Run ``commands`` in one fresh interpreter; their exit codes and the modules loaded
    among ``watched`` (each with its submodules)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE, json.dumps(list(commands)), json.dumps(list(watched))],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_production_commands_load_neither_the_sandbox_nor_the_worker(kartu_up: Up) -> None:
    missing = new_id("imp")
    result = probe(
        kartu_up.env,
        ["--help"],
        ["status", missing, "--json"],
        ["registration", missing, "--json"],
        ["payments", "--status", "PAID", "--limit", "5", "--json"],
        ["payments", "--status", "REFUNDED", "--query"],
        ["completion", "bash"],
        watched=(*SANDBOX, *WORKER_SIDE),
    )
    assert result["codes"] == [0, 1, 1, 0, 0, 0], result
    assert result["loaded"] == [], result


def test_the_sandbox_commands_load_it_apart(kartu_up: Up) -> None:
    result = probe(
        kartu_up.env,
        ["status", new_id("imp"), "--json"],
        ["sandbox", "clock", "--json"],
        watched=SANDBOX,
    )
    assert result["codes"] == [1, 0], result
    assert "sandbox.control_client" in result["loaded"], result


def test_commands_that_never_connect_do_not_load_the_client() -> None:
    # No stack: the usage error is found before connecting, the sandbox is unreachable.
    result = probe(
        base_env(),
        ["resolve", "p_1", "close"],
        ["sandbox", "clock", "--sandbox-url", "http://127.0.0.1:9"],
        watched=KARTU_CLIENT,
    )
    assert result["codes"] == [2, 1], result
    assert result["loaded"] == [], result


def test_a_refused_argument_loads_no_lifecycle() -> None:
    # A bad id or amount is checked with ``workflows.ids`` / ``ayoconnect.models`` alone: the
    # package loads its workflow classes (and their activities and settings) on first use.
    result = probe(
        base_env(),
        ["pay", "bad id!", "--customer", "CUST0000000001", "--amount", "1", "--card-token", "A"],
        ["capture", "p_1", "--amount", "1.234"],
        watched=(*LIFECYCLES, *KARTU_CLIENT),
    )
    assert result["codes"] == [2, 2], result
    assert result["loaded"] == [], result


def test_json_errors_are_one_object_on_stdout(kartu_up: Up, tmp_path: Path) -> None:
    missing = new_id("nope")
    result = kartu_up.kartu("status", missing, "--json")
    assert result.code == 1 and result.err == ""
    assert json.loads(result.out) == {
        "error": {"type": "not_found", "message": f"no payment {missing}", "exit_code": 1}
    }
    bad = kartu_up.kartu("pay", "p_1", "--customer", "C1", "--json")
    assert bad.code == 2 and bad.err == ""
    error = json.loads(bad.out)["error"]
    assert error["type"] == "usage" and "customer id" in error["message"]
    refused = kartu_up.kartu("resolve", "p_1", "close", "--status", "PENDING", "--json")
    error = json.loads(refused.out)["error"]
    assert (refused.code, error["type"], error["exit_code"]) == (2, "invalid_request", 2)
    assert "close status must be one" in error["message"]
