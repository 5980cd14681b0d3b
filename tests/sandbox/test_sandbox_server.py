"""The runner other tests and ``kartu up`` use, the CLI entry point, and the documented
test-card table."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sandbox import TEST_CARDS, SandboxServer, SandboxSettings, run_sandbox, run_sandbox_async
from tests.stack_support import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_run_sandbox_yields_a_live_url_and_stops() -> None:
    with run_sandbox() as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert httpx.get(url + "/_sandbox/health").json() == {"status": "ok"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_sandbox/health")


async def test_async_runner_and_two_sandboxes_side_by_side() -> None:
    async with run_sandbox_async() as first, run_sandbox_async() as second:
        assert first != second
        async with httpx.AsyncClient() as http:
            for url in (first, second):
                assert (await http.get(url + "/_sandbox/health")).status_code == 200


def test_server_object_start_stop_is_idempotent() -> None:
    server = SandboxServer(SandboxSettings(session_seconds=60))
    with pytest.raises(RuntimeError):
        _ = server.base_url
    url = server.start()
    assert server.base_url == url
    assert server.client_settings().base_url == url
    server.stop()
    server.stop()


def test_test_cards_endpoint_and_readme_agree() -> None:
    readme = (ROOT / "sandbox" / "README.md").read_text()
    with run_sandbox() as url:
        listed = httpx.get(url + "/_sandbox/test-cards").json()
    assert listed["otp"] == "123456"
    assert [c["number"] for c in listed["cards"]] == [c.number for c in TEST_CARDS]
    for card in TEST_CARDS:
        assert card.number in readme


def test_python_dash_m_sandbox_serves_on_the_given_port() -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "sandbox", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr and process.stderr.read()
                assert time.monotonic() < deadline, "python -m sandbox did not start"
                time.sleep(0.05)
        assert response.json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(10)


def test_a_server_object_can_restart_on_its_file(tmp_path: Path) -> None:
    server = SandboxServer(SandboxSettings(db_path=str(tmp_path / "s.sqlite")))
    with server:
        httpx.post(server.base_url + "/_sandbox/clock/advance", json={"seconds": 60})
    with server:
        clock = httpx.get(server.base_url + "/_sandbox/clock").json()
    assert clock["offsetSeconds"] == 60
