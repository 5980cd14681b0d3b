"""One time-skipping Temporal test server per session (search attributes registered), one worker
per test module on its own task queue, fake activities (``workflow_fakes.FakeAyoconnect``)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).parent))

from workflow_fakes import FakeAyoconnect
from workflow_helpers import fake_worker, new_queue

from tests.time_skipping import time_skipping_env


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_env() as environment:
        yield environment


@pytest.fixture(scope="module")
def fake() -> FakeAyoconnect:
    return FakeAyoconnect()


@pytest.fixture(scope="session")
async def keep_running() -> AsyncIterator[Callable[[Worker], None]]:
    """Runs a module's worker until the session ends, not the module.

    Payments a module leaves open (a 7-day hold, a payment waiting for the provider) wake up
    when a later module skips time. On a task queue without its worker, their tasks would stay
    outstanding, and the test server does not skip time past outstanding work: every later
    test would hang. So each module's worker stays to serve them."""
    workers: list[Worker] = []
    runs: list[asyncio.Task] = []

    def start(worker: Worker) -> None:
        workers.append(worker)
        runs.append(asyncio.create_task(worker.run()))

    yield start
    for worker in workers:
        await worker.shutdown()
    await asyncio.gather(*runs, return_exceptions=True)


@pytest.fixture(scope="module")
async def task_queue(
    env: WorkflowEnvironment, fake: FakeAyoconnect, keep_running: Callable[[Worker], None]
) -> str:
    queue = new_queue("kartu-test")
    keep_running(fake_worker(env, fake, queue))
    return queue


@pytest.fixture(autouse=True)
def no_body_drift(fake: FakeAyoconnect):
    """Ayoconnect refuses a transactionId reused with another body (409): never send one."""
    fake.body_drift.clear()
    yield
    assert fake.body_drift == [], f"transactionIds resent with another body: {fake.body_drift}"


@pytest.fixture
def key() -> str:
    """A fresh merchant key (paymentId / registrationId) per test: 1-26 of [A-Za-z0-9_]."""
    return "t_" + uuid.uuid4().hex[:20]
