"""Fixtures of the security suite: one real stack per session, what ``kartu up`` runs (root
conftest's ``local_stacks``: free ports, a temporary data directory; here a distinctive
``AYOCONNECT_CLIENT_SECRET`` and every part's spans exported to a receiver of this suite), a
``KartuClient`` and sandbox controls on it, and the gateway app served in-process on its own
thread for the fuzz tests.

Data flows through the stack's own worker and sandbox; callbacks from the sandbox reach the
stack's gateway process. The leak test (``test_no_clear_card_data.py``) runs last by name and
scans everything the session left in the stack, fuzz traffic included.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from security_stack import (
    SecureUp,
    SpanReceiver,
    ThreadedGateway,
    connect_kartu,
    start_environ,
)

from sandbox.control_client import SandboxControl
from starter.client import KartuClient


@pytest.fixture(scope="session")
async def secure_up(local_stacks: Any) -> AsyncIterator[SecureUp]:
    secret = f"kartu-sec-{secrets.token_hex(12)}"
    spans = SpanReceiver()
    try:
        # No hourly reconciliation: a run it starts at a full hour is a workflow that no test
        # started, inside some test's "nothing started" window.
        local = await local_stacks.start(
            "security",
            start_environ(secret, spans),
            headless=False,
            reconciliation_schedule=False,
        )
        yield SecureUp.of(local, secret, spans)
        await local_stacks.stop("security")
    finally:
        spans.stop()  # after the parts flushed their last spans at exit


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
