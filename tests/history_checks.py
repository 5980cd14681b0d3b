"""Questions a test asks of a workflow's recorded history (what happened in what order), so
that it proves a cause by the events rather than by how fast a loaded machine answered."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle


def _is_signal(event: HistoryEvent, signal: str) -> bool:
    return (
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == signal
    )


async def woken_by_signal(handle: WorkflowHandle, signal: str, activity: str) -> bool:
    """True if ``signal`` reached the workflow and it acted on it at once: in the workflow task
    that saw the signal (a timer that fired in that same task does not count against it, the
    payment was woken by both), it scheduled ``activity`` (a 3DS payment's ``payment_status``
    look-up) before any later timer fired. The callback woke the payment, whether or not a
    status poll had fired before it (a loaded machine may take longer than the first poll's 5 s
    to play the customer's 3DS pages). Still false in one order: the poll fired, its look-up
    reached the provider just after the customer finished and found the result, and the
    callback came after that (a window of the look-up's few milliseconds)."""
    signalled = seen = False
    async for event in handle.fetch_history_events():
        kind = event.event_type
        if not signalled:
            signalled = _is_signal(event, signal)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            seen = True
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED and seen:
            return False
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == activity:
                return True
    return False


async def activity_answered_after_signal(
    handle: WorkflowHandle, signal: str, activity: str
) -> bool:
    """True once an ``activity`` scheduled after ``signal`` reached the workflow has its answer
    (a result, or the provider's refusal): the workflow acted on the signal, e.g. checked a
    callback's claim with the provider."""
    signalled = False
    scheduled: dict[int, str] = {}
    async for event in handle.fetch_history_events():
        if _is_signal(event, signal):
            signalled = True
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and signalled:
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            answered = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled.get(answered) == activity:
                return True
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            answered = event.activity_task_failed_event_attributes.scheduled_event_id
            if scheduled.get(answered) == activity:
                return True
    return False
