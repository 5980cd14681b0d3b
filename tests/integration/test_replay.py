"""Histories recorded from real runs (real activities against the sandbox) must replay on
today's workflow code: a change that breaks determinism (a step added, removed or reordered
without ``workflow.patched``) fails here, in CI.

The histories in ``histories/`` are written by the integration tests when
``KARTU_RECORD_HISTORIES=1``; re-record them only for a change meant to be incompatible (and
then keep the old ones as long as workflows started on the old code may still be running).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from integration_support import HISTORIES, RECORD_ENV
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import workflow_runner
from workflows import ALL_WORKFLOWS

SAVED = sorted(HISTORIES.glob("*.json"))

# One of each lifecycle, and the paths real activities take that fakes do not.
EXPECTED = {
    "registration_registered",
    "direct_paid",
    "direct_3ds_callback",
    "direct_3ds_polled",
    "direct_paid_after_503s",
    "direct_paid_after_lost_answer",
    "direct_cancelled_in_3ds_refunded",
    "auth_capture_captured",
    "auth_capture_expired",
    "auth_capture_expired_void_first",
    "auth_capture_auto_capture",
    "auth_capture_auto_void",
    "refund_refunded",
    "unbind_unbound",
}


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))


def test_recorded_histories_are_present():
    missing = EXPECTED - {p.stem for p in SAVED}
    assert not missing, f"record them with {RECORD_ENV}=1 pytest tests/integration: {missing}"


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
async def test_recorded_history_replays(path: Path):
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(_load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"
