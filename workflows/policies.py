"""Every activity timeout and retry policy, in one place.

Rules: every activity has start-to-close AND schedule-to-close; every retry policy has a
maximum interval; a money-moving call (charge, capture, void, refund) is retried a bounded
number of times (its activity looks the payment up before any resend, see ``activities``).
Compensations retry longer (a day) because giving up leaves money held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy

# Ayoconnect said no: the same request gets the same answer, so never retried.
# Not AuthenticationError: a 401/403 during a credential rotation must delay a call, not end it
# (activity retries ride over the rotation; when they run out the answer is still unknown).
FINAL_ERROR_TYPES = [
    "DeclinedError",
    "RuleViolationError",
    "NotFoundError",
    "ConflictError",
    "InvalidRequestError",
    "FinalError",
    "MerchantRejectedError",
]


@dataclass(frozen=True)
class ActivityOptions:
    start_to_close: timedelta
    schedule_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None

    def kwargs(self) -> dict:
        return {
            "start_to_close_timeout": self.start_to_close,
            "schedule_to_close_timeout": self.schedule_to_close,
            "retry_policy": self.retry,
            "heartbeat_timeout": self.heartbeat,
        }


def _retry(initial: float, maximum: float, attempts: int) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=initial),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=maximum),
        maximum_attempts=attempts,
        non_retryable_error_types=FINAL_ERROR_TYPES,
    )


# A workflow task a dead worker had started is handed to another after this long (Temporal's
# default is 10 s, which bench/failover.py measured as the delay of such a payment). A payment's
# task takes milliseconds (a replay of its few dozen events included), so 5 s still leaves a
# loaded worker room; a task that times out is simply run again.
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=5)

# The client's read timeout is 15 s and a money call may make two requests (look-up + send).
# Every provider call heartbeats every second while it runs (``HEARTBEAT_EVERY`` in the
# activities; a call answered within a second sends none): a worker that dies mid-call is noticed
# within the heartbeat timeout and the call is retried on another worker after the retry's first
# interval, then the workflow's next task waits out the dead worker's sticky queue (the worker's
# KARTU_WORKER_STICKY_TIMEOUT_SECONDS, 2 s): bench/failover.py measured 4.8-5.9 s more for the
# payments a SIGKILLed worker held (a 4 s heartbeat: 5.2-7.2 s), not the start-to-close. The
# worker sends a long call's heartbeats every second (``worker.HEARTBEAT_SENT_EVERY``); a late
# one retries the call: a money call looks the payment up first, a read is harmless twice, the
# merchant's confirmation is sent again, as after any of its timeouts (the same body).
HEARTBEAT = timedelta(seconds=3)
READ = ActivityOptions(
    start_to_close=timedelta(seconds=40),
    schedule_to_close=timedelta(minutes=2),
    retry=_retry(1, 10, 5),
    heartbeat=HEARTBEAT,
)
WEBVIEW = ActivityOptions(
    start_to_close=timedelta(seconds=40),
    schedule_to_close=timedelta(minutes=2),
    retry=_retry(1, 10, 5),
    heartbeat=HEARTBEAT,
)
MONEY = ActivityOptions(
    start_to_close=timedelta(seconds=60),
    schedule_to_close=timedelta(minutes=10),
    retry=_retry(1, 60, 8),
    heartbeat=HEARTBEAT,
)
COMPENSATION = ActivityOptions(
    start_to_close=timedelta(seconds=60),
    schedule_to_close=timedelta(hours=24),
    retry=_retry(5, 600, 0),  # bounded by schedule-to-close, not by a count
    heartbeat=HEARTBEAT,
)
UNBIND = ActivityOptions(
    start_to_close=timedelta(seconds=40),
    schedule_to_close=timedelta(minutes=10),
    retry=_retry(2, 60, 10),
    heartbeat=HEARTBEAT,
)
MERCHANT = ActivityOptions(
    start_to_close=timedelta(seconds=30),
    schedule_to_close=timedelta(minutes=10),
    retry=_retry(1, 60, 8),
    heartbeat=HEARTBEAT,
)

# 3DS challenge: poll the status API on this backoff while waiting for the callback.
CHALLENGE_POLL_FIRST = timedelta(seconds=5)
CHALLENGE_POLL_MAX = timedelta(seconds=60)
# Look-ups woken by callbacks, per payment: past it, only the poll timers look (a flood of
# callbacks must not exhaust the ``s<n>`` counter or grow the history).
MAX_CALLBACK_LOOKUPS = 20
# After a charge is ended undecided (3DS window over, charge never found), a late success is
# still watched for this long (callback, then one final look-up) and released at once.
LATE_RESULT_GRACE = timedelta(minutes=15)

# PENDING_PROVIDER: no definite answer after the 3DS window (outage, a challenge the provider
# still shows open). Asked again from this first delay, doubling up to the payment's
# ``provider_poll_max`` (an hour by default), for as long as it takes.
PROVIDER_POLL_FIRST = timedelta(minutes=1)
# Look-up ids a payment keeps for ops' close checks and a compensation once the provider
# answer poll has used the rest.
LOOKUPS_KEPT_FOR_OPS = 20

# Refund workflow: rounds of the MONEY call until a definite answer, on a backoff; about three
# days in all before it waits for ops (NEEDS_ATTENTION).
REFUND_ROUND_FIRST = timedelta(minutes=1)
REFUND_ROUND_MAX = timedelta(hours=1)
REFUND_MAX_ROUNDS = 80

# Unbind workflow: rounds of the UNBIND call while no definite answer comes (an outage, a
# credential rotation longer than the activity's retries), on the refund's backoff: about four
# hours in all, then FAILED with the reason (an unbind can be asked again: ``unb2``...).
UNBIND_MAX_ROUNDS = 10

# Card registration: a binding callback is a hint, the cards list decides. When the list cannot
# be read at the end of the webview wait, the look-up is retried on this backoff for at most
# REGISTRATION_CONFIRM_WINDOW before the registration ends UNCONFIRMED (never an invented result).
REGISTRATION_CONFIRM_FIRST = timedelta(minutes=1)
REGISTRATION_CONFIRM_MAX = timedelta(minutes=10)
REGISTRATION_CONFIRM_WINDOW = timedelta(hours=1)
# Binding callbacks acted on per registration (each may cost a cards-list look-up): past it
# they are recorded as ignored, so a flood cannot grow the history or the ``l<n>`` counter.
MAX_BINDING_CALLBACKS = 20


def challenge_poll_delays(first: timedelta = CHALLENGE_POLL_FIRST) -> Iterator[timedelta]:
    """5 s, 10 s, 20 s, 40 s, 60 s, 60 s, ...: bounded history over a 300 s window (~8 polls)."""
    return _backoff(first, CHALLENGE_POLL_MAX)


def provider_poll_delays(maximum: timedelta) -> Iterator[timedelta]:
    """1 min, 2 min, 4 min ... ``maximum``, ``maximum``: asking for a definite answer."""
    return _backoff(min(PROVIDER_POLL_FIRST, maximum), maximum)


def refund_round_delays() -> Iterator[timedelta]:
    """1 min, 2 min, 4 min ... 1 h, 1 h: between two rounds of a refund without an answer."""
    return _backoff(REFUND_ROUND_FIRST, REFUND_ROUND_MAX)


def unbind_round_delays() -> Iterator[timedelta]:
    """Between two unbind rounds without a definite answer: the refund's backoff."""
    return _backoff(REFUND_ROUND_FIRST, REFUND_ROUND_MAX)


def registration_confirm_delays() -> Iterator[timedelta]:
    """1 min, 2 min, 4 min, 8 min, 10 min, ...: between cards-list look-ups that failed."""
    return _backoff(REGISTRATION_CONFIRM_FIRST, REGISTRATION_CONFIRM_MAX)


def _backoff(first: timedelta, maximum: timedelta) -> Iterator[timedelta]:
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, maximum)
