"""Fixtures of the security suite: one real ``kartu up`` per session (free ports, a temporary
data directory, a distinctive ``AYOCONNECT_CLIENT_SECRET``), a ``KartuClient`` and sandbox
controls on it, and the gateway app served in-process on its own thread for the fuzz tests.

Data flows through the stack's own worker and sandbox; callbacks from the sandbox reach the
stack's gateway process. The leak test (``test_no_clear_card_data.py``) runs last by name and
scans everything the session left in the stack, fuzz traffic included.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from security_stack import SecureUp, ThreadedGateway, connect_kartu, start_secure_up

from sandbox.control_client import SandboxControl
from starter.client import KartuClient


@pytest.fixture(scope="session")
def secure_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureUp]:
    up = start_secure_up(tmp_path_factory.mktemp("kartu-security") / "data")
    try:
        yield up
    finally:
        try:
            up.stop()
        finally:
            if up.process.poll() is None:
                up.kill_all()


@pytest.fixture(scope="session")
async def kartu(secure_up: SecureUp) -> KartuClient:
    return await connect_kartu(secure_up)


@pytest.fixture(scope="session")
async def sandbox_control(secure_up: SecureUp) -> AsyncIterator[SandboxControl]:
    async with SandboxControl(secure_up.sandbox_url) as control:
        yield control


@pytest.fixture(scope="session")
async def stack_gateway(secure_up: SecureUp) -> AsyncIterator[httpx.AsyncClient]:
    """The stack's own gateway process, with its API key."""
    async with httpx.AsyncClient(
        base_url=secure_up.gateway_url, headers={"X-API-Key": secure_up.api_key}, timeout=30
    ) as http:
        yield http


@pytest.fixture(scope="session")
def inproc_gateway(secure_up: SecureUp) -> Iterator[ThreadedGateway]:
    """``gateway.create_app`` in this process (own thread and loop) on the stack's Temporal."""
    gateway = ThreadedGateway(secure_up, api_key="security-fuzz-api-key-0123456789")
    gateway.start()
    try:
        yield gateway
    finally:
        with contextlib.suppress(Exception):
            gateway.stop()
