"""Once per session: a time-skipping Temporal test server (Kartu's search attributes
registered), the sandbox in its own thread (in-memory ledger, callback retries sped up), the
real gateway app on this event loop as the callback bridge (the sandbox's signed callbacks →
``parse_callback_transaction_id`` → signal), a merchant confirmation endpoint, and ONE worker
with the REAL ``AyoconnectActivities`` over a real ``AyoconnectClient`` pointed at the sandbox.

Every test (fixture ``h``) gets clean faults and a sandbox clock aligned with the test server's
(which jumps when a test skips time).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).parent))

from integration_support import (
    CHALLENGE,
    DECLINED,
    FRICTIONLESS,
    INSUFFICIENT_FUNDS,
    Card,
    Harness,
    LoopServers,
    Merchant,
)

from activities import AyoconnectActivities
from ayoconnect import AyoconnectClient, AyoconnectSettings
from gateway import GatewaySettings, create_app
from sandbox import SandboxServer, SandboxSettings
from sandbox.control_client import SandboxControl
from starter.client import KartuClient
from tests.time_skipping import time_skipping_env
from worker import WorkerSettings, build_worker

GATEWAY_API_KEY = "integration-test-api-key-0123"
CALLBACK_PATH = "/callbacks/ayoconnect"


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_env() as environment:
        yield environment


@pytest.fixture(scope="session")
async def harness(env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    task_queue = f"kartu-it-{uuid.uuid4().hex[:8]}"
    ayoconnect = AyoconnectSettings()
    servers = LoopServers()
    sandbox: SandboxServer | None = None
    control: SandboxControl | None = None
    client: AyoconnectClient | None = None
    activities: AyoconnectActivities | None = None
    try:
        gateway = create_app(
            KartuClient(env.client, task_queue=task_queue),
            GatewaySettings(api_key=GATEWAY_API_KEY, port=0),
            ayoconnect_settings=ayoconnect,
        )
        gateway_url = await servers.serve(gateway)
        merchant = Merchant()
        merchant_url = await servers.serve(merchant.app)
        sandbox = SandboxServer(
            SandboxSettings(
                callback_url=gateway_url + CALLBACK_PATH,
                time_factor=0.001,
                db_path=":memory:",
                log_level="warning",
            ),
            ayoconnect=ayoconnect,
        )
        sandbox_url = await asyncio.to_thread(sandbox.start)
        control = SandboxControl(sandbox_url)
        client = AyoconnectClient(sandbox.client_settings())
        activities = AyoconnectActivities(client)
        worker = build_worker(
            env.client,
            WorkerSettings(KARTU_GRACEFUL_SHUTDOWN_SECONDS=2),
            client,
            activities=activities.all(),
            task_queue=task_queue,
        )
        async with worker:
            yield Harness(
                env=env,
                task_queue=task_queue,
                control=control,
                sandbox_url=sandbox_url,
                gateway_url=gateway_url,
                merchant=merchant,
                merchant_url=merchant_url,
                ayoconnect=client,
            )
    finally:
        if activities is not None:
            await activities.aclose()
        if client is not None:
            await client.aclose()
        if control is not None:
            await control.aclose()
        if sandbox is not None:
            await asyncio.to_thread(sandbox.stop)
        await servers.stop()


@pytest.fixture
async def h(harness: Harness) -> AsyncIterator[Harness]:
    """The session stack for one test: no faults left over, clocks aligned."""
    await harness.control.clear_faults()
    await harness.align_clocks()
    yield harness
    await harness.control.clear_faults()


@pytest.fixture(scope="session")
async def cards(harness: Harness) -> dict[str, Card]:
    """Test cards registered once through the real registration workflow."""
    numbers = {
        "frictionless": FRICTIONLESS,
        "challenge": CHALLENGE,
        "declined": DECLINED,
        "insufficient": INSUFFICIENT_FUNDS,
    }
    # One after the other: each awaits its result with time skipping unlocked, and the test
    # server's lock is a counter that concurrent unlocks would leave unbalanced.
    return {name: await harness.card(number) for name, number in numbers.items()}
