"""Every saved history must replay on today's code: a change that breaks determinism (a step
added, removed or reordered without ``workflow.patched``) fails here.

Histories are recorded by the lifecycle tests (``save_history``) once; re-record on purpose
with ``KARTU_RECORD_HISTORIES=1`` only when a change is meant to be incompatible.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import workflow_runner
from workflows import ALL_WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.skipif(not HISTORIES, reason="no saved histories yet")
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path):
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    history = WorkflowHistory.from_json(f"replay-{path.stem}", _load(path))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_representative_histories_are_saved():
    names = {p.stem for p in HISTORIES}
    assert {"direct_paid", "auth_capture_captured", "registration_registered"} <= names
