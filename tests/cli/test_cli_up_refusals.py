"""``kartu up`` refuses a data directory another ``kartu up`` runs on, or a busy port, and starts
nothing: checked against the session's running stack (the real console script)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from cli_stack import Up, alive, free_ports, run_kartu


def test_up_refuses_a_busy_data_dir_or_port_and_starts_nothing(
    kartu_up: Up, tmp_path: Path
) -> None:
    env = {k: v for k, v in kartu_up.env.items() if k != "TEMPORAL_ADDRESS"}
    temporal, ui, sandbox = free_ports(3)
    ports = ["--temporal-port", str(temporal), "--ui-port", str(ui)]
    ports += ["--sandbox-port", str(sandbox)]
    busy_dir = run_kartu(
        "up", "--data-dir", str(kartu_up.data_dir), *ports, env=env, cwd=tmp_path, timeout=30
    )
    assert busy_dir.code == 1
    assert "another `kartu up` is running on" in busy_dir.err
    busy_port = run_kartu(
        "up",
        "--data-dir",
        str(tmp_path / "other"),
        *ports,
        "--gateway-port",
        str(kartu_up.ports["gateway"]),
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    assert busy_port.code == 1
    assert f"port {kartu_up.ports['gateway']} (--gateway-port)" in busy_port.err
    assert not (tmp_path / "other" / "temporal.sqlite").exists()
    # The running stack did not notice.
    assert all(alive(pid) for pid in kartu_up.pids.values())
    assert httpx.get(f"{kartu_up.ready['gateway']}/healthz").status_code == 200
    assert os.path.exists(kartu_up.data_dir / "up.lock")
