"""``history_checks.woken_by_signal`` on recorded 3DS histories and on event orders made from
them: what the 3DS tests conclude about "the callback woke the payment"."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle, WorkflowHistory

from tests.history_checks import woken_by_signal

HISTORIES = Path(__file__).parents[1] / "integration" / "histories"
SIGNAL, LOOK_UP = "payment_callback", "payment_status"


class RecordedHandle:
    """What ``woken_by_signal`` reads of a handle: its history's events."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        for number, event in enumerate(events, start=1):
            event["eventId"] = str(number)
        self._events = WorkflowHistory.from_json("wf", {"events": events}).events

    async def fetch_history_events(self) -> AsyncIterator[HistoryEvent]:
        for event in self._events:
            yield event


def recorded(name: str) -> list[dict[str, Any]]:
    return json.loads((HISTORIES / f"{name}.json").read_text())["events"]


def kind(event: dict[str, Any]) -> str:
    return str(event["eventType"]).removeprefix("EVENT_TYPE_")


def index_of(events: list[dict[str, Any]], name: str, after: int = 0) -> int:
    return next(i for i, e in enumerate(events) if i >= after and kind(e) == name)


def event_of(name: str, event_kind: str) -> dict[str, Any]:
    """A copy of the first ``event_kind`` event of the recorded history ``name``."""
    events = recorded(name)
    return copy.deepcopy(events[index_of(events, event_kind)])


async def woken(events: list[dict[str, Any]], activity: str = LOOK_UP) -> bool:
    handle = cast(WorkflowHandle, RecordedHandle(events))
    return await woken_by_signal(handle, SIGNAL, activity)


async def test_the_callback_history_is_woken_by_its_signal() -> None:
    assert await woken(recorded("direct_3ds_callback"))


async def test_a_look_up_of_another_kind_does_not_count() -> None:
    assert not await woken(recorded("direct_3ds_callback"), activity="create_charge_again")


async def test_the_polled_history_has_no_callback() -> None:
    assert not await woken(recorded("direct_3ds_polled"))


async def test_a_callback_after_the_poll_decided_did_not_wake_it() -> None:
    events = recorded("direct_3ds_polled")
    signal = event_of("direct_3ds_callback", "WORKFLOW_EXECUTION_SIGNALED")
    events.insert(
        index_of(events, "ACTIVITY_TASK_COMPLETED", index_of(events, "TIMER_FIRED")) + 1, signal
    )
    assert not await woken(events)


async def test_a_timer_fired_in_the_signal_s_own_task_still_counts_as_woken() -> None:
    # The poll's timer and the callback reached the same workflow task: it saw the signal.
    events = recorded("direct_3ds_callback")
    fired = event_of("direct_3ds_polled", "TIMER_FIRED")
    events.insert(index_of(events, "WORKFLOW_EXECUTION_SIGNALED") + 1, fired)
    assert await woken(events)


async def test_a_timer_fired_after_the_signal_s_task_before_the_look_up_did_not() -> None:
    events = recorded("direct_3ds_callback")
    fired = event_of("direct_3ds_polled", "TIMER_FIRED")
    look_up = index_of(
        events, "ACTIVITY_TASK_SCHEDULED", index_of(events, "WORKFLOW_EXECUTION_SIGNALED")
    )
    events.insert(look_up, fired)
    assert not await woken(events)
