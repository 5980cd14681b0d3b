"""``kartu demo`` against the running stack: every flow ends in its expected state."""

from __future__ import annotations

import pytest
from cli_stack import Up

from starter.demo import FlowResult, print_results

FLOWS = {
    "register (webview)": "REGISTERED",
    "register 3DS card (webview)": "REGISTERED",
    "direct payment": "PAID",
    "3DS payment": "PAID",
    "authorize, capture": "CAPTURED",
    "authorize, void": "VOIDED",
    "authorize, expire": "EXPIRED",
    "pay, refund": "REFUNDED",
    "cards list": "2 ACTIVE",
    "unbind card": "UNBOUND",
}


def test_demo_runs_every_flow(kartu_up: Up) -> None:
    report = kartu_up.kartu("demo", "--json", timeout=120).json()
    assert report["ok"] is True
    flows = {f["flow"]: f for f in report["flows"]}
    assert list(flows) == list(FLOWS)
    for name, expected in FLOWS.items():
        flow = flows[name]
        assert flow["expected"] == expected
        assert flow["status"] == expected, flow
        assert flow["ok"] is True
    ui = kartu_up.env["KARTU_UI_URL"]
    for name, flow in flows.items():
        if name == "cards list":
            assert flow["workflow_id"] is None
            continue
        assert flow["ui"] == f"{ui}/namespaces/default/workflows/{flow['workflow_id']}"

    # The demo's payments are real: the CLI reads them like any other.
    expired = flows["authorize, expire"]["workflow_id"].removeprefix("payment-")
    state = kartu_up.kartu("status", expired, "--json").json()
    assert state["status"] == "EXPIRED"
    assert [t["to_status"] for t in state["history"]] == ["AUTHORIZED", "EXPIRED"]


def test_demo_table_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    """The human rendering of the same rows (no stack needed: the rows above are real)."""
    results = [
        FlowResult("direct payment", "PAID", "PAID", "payment-d1_pay", 0.4),
        FlowResult("cards list", "2 ACTIVE", "2 ACTIVE", None, 0.1),
        FlowResult("authorize, expire", "EXPIRED", "AUTHORIZED", "payment-d1_exp", 8.0, "why"),
    ]
    print_results(results, json_output=False, ui_url="http://127.0.0.1:8233")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["FLOW", "EXPECTED", "STATUS", "RESULT", "SECONDS", "WORKFLOW", "ID"]
    assert "direct payment" in lines[1] and " ok " in lines[1]
    assert "FAILED" in lines[3]
    assert "authorize, expire: why" in out
    assert "http://127.0.0.1:8233/namespaces/default/workflows/payment-d1_pay" in out
    assert out.rstrip().endswith("some flows did not end as expected")
