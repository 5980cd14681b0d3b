"""The worker's own timing settings, as ``worker.build_worker`` gives them to the SDK: what the
failover figures (README "Failover") rest on."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
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
    # Parked authorizations wake on the normal queue, not the sticky one: pollers there.
    assert config["workflow_task_poller_behavior"].maximum == 20
    assert config["nonsticky_to_sticky_poll_ratio"] == 0.5
    every = [policies.READ, policies.WEBVIEW, policies.MONEY, policies.COMPENSATION]
    every += [policies.UNBIND, policies.MERCHANT]
    assert {options.heartbeat for options in every} == {policies.HEARTBEAT}


async def test_workflow_task_pollers_are_settings(
    env: WorkflowEnvironment, fake: FakeAyoconnect, monkeypatch
) -> None:
    monkeypatch.setenv("KARTU_WORKER_WORKFLOW_TASK_POLLERS", "12")
    monkeypatch.setenv("KARTU_WORKER_NONSTICKY_POLL_RATIO", "0.5")
    worker = build_worker(
        env.client, WorkerSettings(), None, activities=fake.all(), task_queue=f"cfg-{uuid.uuid4()}"
    )
    config = worker.config()
    assert config["workflow_task_poller_behavior"].maximum == 12
    assert config["nonsticky_to_sticky_poll_ratio"] == 0.5


def test_bad_poller_settings_are_refused_with_their_names(monkeypatch) -> None:
    monkeypatch.setenv("KARTU_WORKER_WORKFLOW_TASK_POLLERS", "1")
    monkeypatch.setenv("KARTU_WORKER_NONSTICKY_POLL_RATIO", "0")
    with pytest.raises(ValidationError) as refused:
        WorkerSettings()
    text = str(refused.value)
    assert "KARTU_WORKER_WORKFLOW_TASK_POLLERS" in text
    assert "KARTU_WORKER_NONSTICKY_POLL_RATIO" in text
