"""The time-skipping Temporal test server every suite that skips time starts the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from starter.binaries import temporal_test_server
from worker import register_search_attributes

# How long the time-skipping server may take to start (the SDK's default is 5 s).
TEST_SERVER_STARTUP = timedelta(seconds=60)


@asynccontextmanager
async def time_skipping_env(runtime: Runtime | None = None) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server with Kartu's search attributes registered, stopped after."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server()),
        data_converter=pydantic_data_converter,
        runtime=runtime,
        # The SDK waits 5 s for it: on a loaded 2-core machine its start took longer once and
        # every test of the session errored.
        test_server_startup_timeout=TEST_SERVER_STARTUP,
    )
    try:
        # The test server refuses unknown search attributes (and the workflow task then
        # retries forever): register Kartu's before any workflow starts.
        await register_search_attributes(environment.client)
        yield environment
    finally:
        await environment.shutdown()
