"""``kartu_compensations_total`` counts money put back after a failure or a cancel, not the
normal end of a hold: an expiry's void shows as EXPIRED only, a cancel's void is a compensation.

The module runs its own time-skipping server on a runtime whose metrics go to a buffer (the
session's server exports none), and its own worker, stopped with it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import FakeAyoconnect
from workflow_helpers import (
    finish,
    own_worker,
    payment_input,
    start_payment,
    wait_skipping,
)

from tests.time_skipping import time_skipping_env
from workflows.models import PaymentStatus

BUFFER = MetricBuffer(10_000)
PAST_THE_WINDOW = 8 * 24 * 3600  # the fake's window is 7 days


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_env(Runtime(telemetry=TelemetryConfig(metrics=BUFFER))) as environment:
        yield environment


@pytest.fixture(scope="module")
async def task_queue(env: WorkflowEnvironment, fake: FakeAyoconnect) -> AsyncIterator[str]:
    """This module's worker, for this module only: the server goes with the module."""
    async with own_worker(env, fake, "kartu-metrics") as queue:
        yield queue


# Everything the buffer gave so far (it hands each update out once). Names without the
# ``_total`` the Prometheus exporter adds.
SEEN: list[tuple[str, dict[str, Any], Any]] = []


def _drained() -> list[tuple[str, dict[str, Any], Any]]:
    SEEN.extend((u.metric.name, dict(u.attributes), u.value) for u in BUFFER.retrieve_updates())
    return SEEN


def compensations() -> list[tuple[str, str]]:
    return [(a["flow"], a["kind"]) for n, a, _ in _drained() if n == "kartu_compensations"]


def ended() -> list[tuple[str, str]]:
    return [(a["flow"], a["status"]) for n, a, _ in _drained() if n == "kartu_payments_ended"]


async def authorize(env: WorkflowEnvironment, task_queue: str, key: str) -> Any:
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key), auth_capture=True
    )
    assert outcome.status is PaymentStatus.AUTHORIZED
    return handle


async def test_an_expiry_is_not_a_compensation(env, task_queue, fake):
    key = "m_" + uuid.uuid4().hex[:20]
    before = (compensations(), ended())
    handle = await authorize(env, task_queue, key)
    state = await wait_skipping(
        env, handle, PAST_THE_WINDOW, lambda s: s.status is PaymentStatus.EXPIRED
    )
    assert state.status is PaymentStatus.EXPIRED
    assert fake.call_names(key, "void") == ["void"]  # the hold was released by Kartu's void
    await finish(env, handle)
    assert compensations() == before[0]
    assert ended()[len(before[1]) :] == [("AUTH_CAPTURE", "EXPIRED")]


async def test_a_cancelled_hold_is_a_compensation(env, task_queue, fake):
    key = "m_" + uuid.uuid4().hex[:20]
    before = compensations()
    handle = await authorize(env, task_queue, key)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await finish(env, handle)
    assert isinstance(failure.value.cause, CancelledError)
    assert fake.call_names(key, "void") == ["void"]
    assert compensations()[len(before) :] == [("AUTH_CAPTURE", "void")]
