"""Provider datetimes made safe to compare with workflow time.

Ayoconnect stamps its headers in Jakarta time (``+07:00``); a response field that arrives
without an offset (``authorizationExpiresAt``, ``Webview.expiresAt``, ``updatedAt``) is read as
Jakarta wall-clock time rather than trusted to be UTC. Comparing a naive datetime with
``workflow.now()`` raises TypeError, which fails the workflow task forever: every provider time
goes through ``aware`` before workflow code uses it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# A fixed offset, not a tz database zone: Indonesia has no daylight saving time, and a fixed
# offset keeps replay independent of the worker's tz data.
JAKARTA = timezone(timedelta(hours=7), "WIB")


def aware(value: datetime) -> datetime:
    """``value`` with an offset: a naive one is taken as Jakarta time."""
    return value if value.tzinfo is not None else value.replace(tzinfo=JAKARTA)


def aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)
