"""Questions a test asks of a workflow's recorded history (what happened in what order), so
that it proves a cause by the events rather than by how fast a loaded machine answered."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle


async def woken_by_signal(handle: WorkflowHandle, signal: str) -> bool:
    """True if ``signal`` reached the workflow and it acted on it at once: an activity (the 3DS
    payment's status look-up) scheduled after the signal and before any later timer fired. The
    callback woke the payment, whether or not a status poll had fired before it (a loaded
    machine may take longer than the first poll's 5 s to play the customer's 3DS pages)."""
    signalled = False
    async for event in handle.fetch_history_events():
        if not signalled:
            signalled = (
                event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
                and event.workflow_execution_signaled_event_attributes.signal_name == signal
            )
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            return False
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
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
        if (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and event.workflow_execution_signaled_event_attributes.signal_name == signal
        ):
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
