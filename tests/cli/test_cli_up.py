"""``kartu up``: one command starts the whole stack, SIGTERM or Ctrl-C stops all of it, and a
restart on the same data directory finds every payment. (Its refusals, checked against the
session's running stack, are ``test_cli_up_refusals.py``: this file starts only its own.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time
from pathlib import Path
from typing import Any

import httpx
from cli_stack import (
    FRICTIONLESS_CARD,
    Up,
    alive,
    new_id,
    register,
    start_up,
)


def port_free(port: int) -> bool:
    """Nothing listens, and a server could bind it again (TIME_WAIT left by closed connections
    does not count: servers set SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def assert_all_gone(up: Up, pids: dict[str, int]) -> None:
    assert set(pids) == {"temporal", "sandbox", "gateway", "worker"}
    assert [name for name, pid in pids.items() if alive(pid)] == []
    assert [name for name, port in up.ports.items() if not port_free(port)] == []
    assert [e["event"] for e in up.events[-2:]] == ["stopping", "stopped"]


def test_up_stops_everything_and_keeps_payments(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = start_up(data)
    try:
        ready = up.ready
        assert ready["ui"] == f"http://127.0.0.1:{up.ports['ui']}"
        assert ready["gateway"] == f"http://127.0.0.1:{up.ports['gateway']}"
        assert ready["callback_url"].endswith("/callbacks/ayoconnect")
        assert Path(ready["data_dir"]) == data.resolve()
        assert (data / "temporal.sqlite").is_file()
        assert (data / "sandbox.sqlite").is_file()
        for name in ("temporal", "sandbox", "gateway", "worker"):
            assert Path(ready["logs"][name]).is_file()

        # The generated API key: a 0600 file, printed by path, never by value.
        key_file = Path(ready["api_key_file"])
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        assert key not in json.dumps(up.events)
        gateway = ready["gateway"]
        assert httpx.get(f"{gateway}/healthz").json()["status"] == "ok"
        assert httpx.get(f"{gateway}/payments/p_1").status_code == 401
        with_key = httpx.get(f"{gateway}/payments/p_1", headers={"X-API-Key": key})
        assert with_key.status_code == 404

        card = register(up, FRICTIONLESS_CARD)
        payment = new_id("keep")
        args = ["pay", payment, "--customer", card.customer_id, "--amount", "12345.67"]
        paid = up.kartu(*args, "--card-token", card.token, "--json").json()
        assert paid["status"] == "PAID"
        # Where it said: the worker's metrics (the SDK's and Kartu's), the gateway's.
        port = up.ports["worker-metrics"]
        assert ready["metrics"]["worker"] == f"http://127.0.0.1:{port}/metrics"
        worker = httpx.get(ready["metrics"]["worker"], timeout=10).text
        assert "temporal_workflow_completed" in worker or "temporal_worker_task_slots" in worker
        ended = [
            line
            for line in worker.splitlines()
            if line.startswith("kartu_payments_ended_total{")
            and 'flow="DIRECT"' in line
            and 'status="PAID"' in line
        ]
        assert ended and float(ended[0].rsplit(" ", 1)[1]) == 1
        gateway = httpx.get(ready["metrics"]["gateway"], timeout=10).text
        assert "kartu_gateway_requests_total" in gateway
        pids = up.pids
        assert all(alive(pid) for pid in pids.values())
    finally:
        code = up.stop()
    assert code == 0
    assert_all_gone(up, pids)

    # Same directory, same ports: everything is where it was.
    again = start_up(data, up.ports)
    try:
        assert again.ready["api_key_file"] == str(key_file)
        assert key_file.read_text().strip() == key
        state = again.kartu("status", payment, "--json").json()
        assert state["status"] == "PAID"
        assert state["amount"] == "12345.67"
        cards = again.kartu("cards", card.customer_id, "--json").json()
        assert cards["provider"] == "found"  # Ayoconnect's list, after the restart too
        assert [c["card_token"] for c in cards["cards"]] == [card.token]
        assert cards["cards"][0]["status"] == "ACTIVE"
        repeat = again.kartu(*args, "--card-token", card.token, "--json").json()
        assert repeat["invoice_number"] == paid["invoice_number"]
        pids = again.pids
        # Ctrl-C in the terminal: SIGINT stops it all the same.
        again.process.send_signal(signal.SIGINT)
    finally:
        code = again.stop()
    assert code == 0
    assert_all_gone(again, pids)


def wait_until(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def children_of(pid: int) -> set[int]:
    found = set()
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat_file.parent.name))
    return found


def test_up_restarts_a_killed_worker_and_its_parts_die_with_it(tmp_path: Path) -> None:
    up = start_up(tmp_path / "data")
    assert up.process is not None
    try:
        card = register(up, FRICTIONLESS_CARD)
        pids = dict(up.pids)
        os.kill(pids["worker"], signal.SIGKILL)  # a crash, as the OOM killer would
        # Started while no worker runs: the restarted one takes it over and it finishes.
        args = ["pay", new_id("sv"), "--customer", card.customer_id, "--amount", "5000"]
        paid = up.kartu(*args, "--card-token", card.token, "--json").json()
        assert paid["status"] == "PAID"
        children = children_of(up.process.pid)
        assert len(children) == 4 and pids["worker"] not in children  # a new worker

        # kartu up itself killed: nothing it started survives it, the ports come free.
        os.kill(up.process.pid, signal.SIGKILL)
        up.process.wait(timeout=10)
        assert wait_until(lambda: not any(alive(pid) for pid in children))
        assert wait_until(lambda: all(port_free(port) for port in up.ports.values()))
        assert up.process.stdout is not None
        said = [json.loads(line) for line in up.process.stdout.read().splitlines() if line]
        restarting, restarted = (e for e in said if e["event"].startswith("restart"))
        assert restarting["part"] == restarted["part"] == "worker"
        assert "SIGKILL" in restarting["reason"]
        assert restarted["pid"] in children
    finally:
        up.kill_all()
