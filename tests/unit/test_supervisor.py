"""``kartu up``'s supervisor: a dead part is started again after a backoff that doubles while
it keeps dying and starts over once it ran for a minute."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starter.supervisor import FIRST_DELAY, HEALTHY_AFTER, MAX_DELAY, Supervisor


@dataclass
class FakePart:
    name: str
    code: int | None = None
    pid: int | None = 100

    def exit_code(self) -> int | None:
        return self.code

    def died(self) -> str:
        return f"{self.name} was killed by SIGKILL"


@dataclass
class FakeStack:
    children: list[FakePart]
    started: list[str] = field(default_factory=list)

    def start_child(self, name: str) -> None:
        part = next(c for c in self.children if c.name == name)
        part.code, part.pid = None, (part.pid or 0) + 1
        self.started.append(name)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def supervised() -> tuple[FakeStack, Supervisor, Clock, list[tuple[str, dict[str, Any]]]]:
    stack = FakeStack([FakePart("sandbox"), FakePart("gateway"), FakePart("worker")])
    said: list[tuple[str, dict[str, Any]]] = []
    clock = Clock()
    supervisor = Supervisor(stack, lambda event, _msg, **extra: said.append((event, extra)), clock)
    return stack, supervisor, clock, said


def crash_and_restart(stack: FakeStack, supervisor: Supervisor, clock: Clock) -> float:
    """Kill the worker, let the supervisor notice, return the delay before it restarted."""
    stack.children[2].code = -9
    supervisor.check()
    noticed = clock.now
    while stack.children[2].code is not None:
        clock.now += 0.5
        supervisor.check()
    return clock.now - noticed


def test_a_dead_part_is_restarted_after_a_doubling_backoff_and_said():
    stack, supervisor, clock, said = supervised()
    delays = [crash_and_restart(stack, supervisor, clock) for _ in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_DELAY, MAX_DELAY]
    assert stack.started == ["worker"] * 7
    assert [event for event, _ in said[:2]] == ["restarting", "restarted"]
    assert said[0][1]["part"] == "worker" and "SIGKILL" in said[0][1]["reason"]
    assert said[-1][1]["restarts"] == 7


def test_a_part_that_ran_for_a_minute_starts_over_from_the_first_delay():
    stack, supervisor, clock, _ = supervised()
    for _ in range(3):
        crash_and_restart(stack, supervisor, clock)
    clock.now += HEALTHY_AFTER
    assert crash_and_restart(stack, supervisor, clock) == FIRST_DELAY


def test_living_parts_are_left_alone():
    stack, supervisor, clock, said = supervised()
    for _ in range(10):
        clock.now += 1
        supervisor.check()
    assert stack.started == [] and said == []
