"""The floor: a bare workflow running N no-op activities, on the same server as Kartu.

Run as its own worker process (`python -m bench.floor`) so it competes for the machine the way
Kartu's worker does.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker

FLOOR_TASK_QUEUE = "kartu-bench-floor"


@activity.defn(name="bench_noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="BenchFloor")
class FloorWorkflow:
    """Answers an early-return update after its first activity, as a payment does. With
    ``second_update`` it then waits for a ``second`` update before its other activities and
    answers it when they are done, as an authorization waits for its capture: the floor of
    auth + capture pays the same client round trip Kartu's capture does."""

    def __init__(self) -> None:
        self._first_done = False
        self._second_asked = False
        self._all_done = False

    @workflow.run
    async def run(self, activities: int, second_update: bool = False) -> int:
        for step in range(activities):
            if step == 1 and second_update:
                await workflow.wait_condition(lambda: self._second_asked)
            await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=10)
            )
            self._first_done = True
        self._all_done = True
        return activities

    @workflow.update(name="first_outcome")
    async def first_outcome(self) -> bool:
        await workflow.wait_condition(lambda: self._first_done)
        return True

    @workflow.update(name="second")
    async def second(self) -> bool:
        self._second_asked = True
        await workflow.wait_condition(lambda: self._all_done)
        return True


async def main() -> None:
    # The same connection and data converter as Kartu's worker and the bench's KartuClient
    # (``starter.settings.connect_temporal``: pydantic payloads encrypted by the codec, the
    # tracing interceptors): the floor pays for encryption too, so the ratio shows Kartu's own
    # work. bench.payments checks that both sides' payloads carry the same encoding.
    from starter.settings import TemporalSettings, connect_temporal

    client = await connect_temporal(TemporalSettings())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client, task_queue=FLOOR_TASK_QUEUE, workflows=[FloorWorkflow], activities=[noop]
    )
    async with worker:
        print("floor worker ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
    # No interpreter finalization: the SDK's Rust threads can crash it (temporalio/sdk-python#300).
    os._exit(0)
