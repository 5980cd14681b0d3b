"""The worker's own timing settings, as ``worker.build_worker`` gives them to the SDK: what the
failover figures (README "Failover") rest on."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from workflow_fakes import FakeAyoconnect

from worker import WorkerSettings, build_worker
from workflows import policies


async def test_heartbeats_reach_the_server_well_inside_their_timeout(
    env: WorkflowEnvironment, fake: FakeAyoconnect
) -> None:
    worker = build_worker(
        env.client, WorkerSettings(), None, activities=fake.all(), task_queue=f"cfg-{uuid.uuid4()}"
    )
    config = worker.config()
    # The SDK would wait 0.8 x the heartbeat timeout between sends: a second late and a call
    # still running would be retried. At most half the timeout leaves a loaded worker room.
    assert policies.HEARTBEAT is not None
    assert config["max_heartbeat_throttle_interval"] * 2 <= policies.HEARTBEAT
    # A dead worker's payments wait this long for their next task before another takes it.
    assert config["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=2)
    every = [policies.READ, policies.WEBVIEW, policies.MONEY, policies.COMPENSATION]
    every += [policies.UNBIND, policies.MERCHANT]
    assert {options.heartbeat for options in every} == {policies.HEARTBEAT}
