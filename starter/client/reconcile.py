"""Running reconciliation: once, on demand (``run_reconciliation``, ``kartu reconcile``), and on a
Temporal Schedule (``ensure_schedule``: ``kartu up`` and ``kartu reconcile --schedule``).

The schedule ``kartu-reconciliation`` starts a ``Reconciliation`` workflow every ``every``
(default 1 h) over a ``since`` window (default 48 h); runs never overlap (a run still going
when the next is due makes that one skip). Creating it again updates it in place and keeps an
operator's pause. Settings: ``KARTU_RECONCILE_EVERY``, ``KARTU_RECONCILE_SINCE``,
``KARTU_RECONCILE_CONFIRM_AFTER`` (``90s``, ``15m``, ``1h``, ``2d`` or seconds).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDReusePolicy

from workflows.reconciliation import ReconciliationWorkflow
from workflows.reconciliation_models import (
    DEFAULT_CONFIRM_AFTER,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    SCHEDULE_ID,
    ReconcileInput,
    ReconcileReport,
)

from . import summaries
from .validation import parse_duration

DEFAULT_EVERY = timedelta(hours=1)
MIN_EVERY = timedelta(minutes=1)
MAX_EVERY = timedelta(days=7)
# A run that takes longer than this is stuck: it is ended, and the next one starts.
RUN_TIMEOUT = timedelta(hours=6)


class ReconcileSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    every: timedelta = Field(default=DEFAULT_EVERY, validation_alias="KARTU_RECONCILE_EVERY")
    since: timedelta = Field(default=DEFAULT_WINDOW, validation_alias="KARTU_RECONCILE_SINCE")
    confirm_after: timedelta = Field(
        default=DEFAULT_CONFIRM_AFTER, validation_alias="KARTU_RECONCILE_CONFIRM_AFTER"
    )

    @field_validator("every", "since", "confirm_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("every")
    @classmethod
    def _every(cls, value: timedelta) -> timedelta:
        check_every(value)
        return value

    @field_validator("since")
    @classmethod
    def _since(cls, value: timedelta) -> timedelta:
        check_since(value)
        return value


def check_every(every: timedelta) -> None:
    if not MIN_EVERY <= every <= MAX_EVERY:
        raise ValueError("the schedule runs at most every minute and at least every 7 days")


def check_since(since: timedelta) -> None:
    if not timedelta(0) < since <= MAX_WINDOW:
        raise ValueError(f"the window is positive and at most {MAX_WINDOW.days} days")


# --- the schedule ---------------------------------------------------------------------------


class ScheduleResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    schedule_id: str
    action: str  # created / updated
    every: timedelta
    since: timedelta
    task_queue: str
    paused: bool
    next_runs: list[datetime]


def reconciliation_schedule(
    task_queue: str, every: timedelta, since: timedelta, confirm_after: timedelta
) -> Schedule:
    check_every(every)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run,
            ReconcileInput(since=since, confirm_after=confirm_after),
            id=SCHEDULE_ID,  # Temporal appends the run's time: kartu-reconciliation-<time>
            task_queue=task_queue,
            execution_timeout=RUN_TIMEOUT,
            **summaries.reconciliation(since, confirm_after, scheduled=True).start_options(),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"Kartu reconciliation: every {every}, window {since}"),
    )


async def ensure_schedule(
    client: Client,
    *,
    task_queue: str,
    every: timedelta = DEFAULT_EVERY,
    since: timedelta = DEFAULT_WINDOW,
    confirm_after: timedelta = DEFAULT_CONFIRM_AFTER,
) -> ScheduleResult:
    """Create the schedule, or update it to these settings (an operator's pause is kept)."""
    schedule = reconciliation_schedule(task_queue, every, since, confirm_after)

    def keep_pause(current: ScheduleUpdateInput) -> ScheduleUpdate:
        state = current.description.schedule.state
        # A paused schedule's note is the operator's reason: it stays with the pause.
        note = state.note if state.paused else schedule.state.note
        updated = dataclasses.replace(schedule.state, paused=state.paused, note=note)
        return ScheduleUpdate(schedule=dataclasses.replace(schedule, state=updated))

    try:
        handle = await client.create_schedule(SCHEDULE_ID, schedule)
        action = "created"
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(SCHEDULE_ID)
        await handle.update(keep_pause)
        action = "updated"
    described = await handle.describe()
    return ScheduleResult(
        schedule_id=SCHEDULE_ID,
        action=action,
        every=every,
        since=since,
        task_queue=task_queue,
        paused=described.schedule.state.paused,
        next_runs=list(described.info.next_action_times[:3]),
    )


async def ensure_local_schedule(
    client: Client, *, task_queue: str, codec_keys_file: Path | None
) -> ScheduleResult:
    """``kartu up``: the schedule with the environment's settings, its input encrypted with the
    local stack's codec key (``client`` is the dev server's plain one)."""
    from codec import KartuCodec, data_converter, load_or_create_local_keys
    from starter.connection import kartu_data_converter

    if codec_keys_file is not None:
        converter = data_converter(KartuCodec(load_or_create_local_keys(codec_keys_file)))
    else:
        converter = kartu_data_converter()
    kartu = Client(client.service_client, namespace=client.namespace, data_converter=converter)
    settings = ReconcileSettings()
    return await ensure_schedule(
        kartu,
        task_queue=task_queue,
        every=settings.every,
        since=settings.since,
        confirm_after=settings.confirm_after,
    )


# --- on demand ------------------------------------------------------------------------------


def new_reconciliation_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"reconcile-{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


async def run_reconciliation(
    client: Client,
    *,
    task_queue: str,
    since: timedelta = DEFAULT_WINDOW,
    confirm_after: timedelta = DEFAULT_CONFIRM_AFTER,
    workflow_id: str | None = None,
) -> ReconcileReport:
    """Run one reconciliation to its end and return its report (``WorkflowFailureError`` if
    some difference could not be raised: its ``report`` query still has the report)."""
    check_since(since)
    report: ReconcileReport = await client.execute_workflow(
        ReconciliationWorkflow.run,
        ReconcileInput(since=since, confirm_after=confirm_after),
        id=workflow_id or new_reconciliation_id(),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        execution_timeout=RUN_TIMEOUT,
        **summaries.reconciliation(since, confirm_after, scheduled=False).start_options(),
    )
    return report
