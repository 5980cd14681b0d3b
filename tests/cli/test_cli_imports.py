"""The production CLI never loads the sandbox: importing ``starter.cli`` and running production
commands against a real stack leaves ``sandbox`` out of ``sys.modules``; the development
commands (``kartu sandbox ...``) load it on their own path. Each check runs in a fresh
interpreter, so nothing the test process imported counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_stack import ROOT, Up, new_id

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
loaded = sorted(m for m in sys.modules if m == "sandbox" or m.startswith("sandbox."))
print(json.dumps({"codes": codes, "sandbox": loaded}))
"""


def probe(up: Up, *commands: list[str]) -> dict[str, object]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE, json.dumps(list(commands))],
        env=up.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_production_commands_do_not_import_the_sandbox(kartu_up: Up) -> None:
    missing = new_id("imp")
    result = probe(
        kartu_up,
        ["--help"],
        ["status", missing, "--json"],
        ["registration", missing, "--json"],
        ["payments", "--status", "PAID", "--limit", "5", "--json"],
        ["payments", "--status", "REFUNDED", "--query"],
        ["completion", "bash"],
    )
    assert result["codes"] == [0, 1, 1, 0, 0, 0], result
    assert result["sandbox"] == [], result


def test_the_sandbox_commands_load_it_apart(kartu_up: Up) -> None:
    result = probe(kartu_up, ["status", new_id("imp"), "--json"], ["sandbox", "clock", "--json"])
    assert result["codes"] == [1, 0], result
    assert "sandbox.control_client" in result["sandbox"], result


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
