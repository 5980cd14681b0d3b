"""The sandbox clock: wall time plus an offset tests move forward, and the wire's time format.

Everything time-bound in the contract (token lifetime, webview and 3DS sessions, authorization
windows) is measured on this clock, so a test can skip seven days with one request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

JAKARTA = timezone(timedelta(hours=7))
_DB_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def wire_time(moment: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss+07:00``: the contract's 25-character timestamp."""
    return moment.astimezone(JAKARTA).strftime("%Y-%m-%dT%H:%M:%S+07:00")


def wire_datetime(moment: datetime) -> datetime:
    """The same instant as the wire shows it: Jakarta offset, whole seconds."""
    return moment.astimezone(JAKARTA).replace(microsecond=0)


def db_time(moment: datetime) -> str:
    # One fixed UTC format, so SQLite compares instants as plain strings.
    return moment.astimezone(UTC).strftime(_DB_FORMAT)


def from_db(text: str) -> datetime:
    return datetime.strptime(text, _DB_FORMAT).replace(tzinfo=UTC)


class SandboxClock:
    def __init__(
        self,
        offset_seconds: float = 0.0,
        on_change: Callable[[float], None] | None = None,
    ) -> None:
        self._offset = offset_seconds
        self._on_change = on_change

    @property
    def offset_seconds(self) -> float:
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._set(self._offset + seconds)
        return self.now()

    def reset(self) -> None:
        self._set(0.0)

    def _set(self, offset: float) -> None:
        self._offset = offset
        if self._on_change is not None:
            self._on_change(offset)
