"""State bookkeeping shared by every lifecycle: transitions and ignored messages, timestamped
with workflow time (deterministic on replay)."""

from __future__ import annotations

from typing import Protocol

from temporalio import workflow

from . import details

with workflow.unsafe.imports_passed_through():
    from .models import IgnoredMessage, Transition

# History inside the state is bounded: a flood of duplicate signals must not grow it forever.
MAX_IGNORED = 50


class Journaled(Protocol):
    status: str
    history: list[Transition]


def transition(state: Journaled, to: str, reason: str) -> bool:
    """Move ``state`` to ``to`` and record why; False (and nothing recorded) if already there."""
    if state.status == to:
        return False
    state.history.append(
        Transition(at=workflow.now(), from_status=state.status, to_status=to, reason=reason)
    )
    state.status = to
    details.show(state)
    return True


def ignore(ignored: list[IgnoredMessage], name: str, reason: str) -> None:
    if len(ignored) >= MAX_IGNORED:
        del ignored[0]
    ignored.append(IgnoredMessage(at=workflow.now(), name=name, reason=reason))
    workflow.logger.info("ignored %s: %s", name, reason)
