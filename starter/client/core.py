"""What every part of ``KartuClient`` stands on: the Temporal client, and the mechanics of
starting, updating, signalling, querying and waiting on Kartu's workflows, with Temporal's errors
turned into Kartu's (``errors.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self, TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from starter.settings import DEFAULT_TASK_QUEUE, TemporalSettings, connect_temporal
from workflows.ids import MAX_STEP_ATTEMPTS, payment_workflow_id, refund_workflow_id
from workflows.models import (
    ActionResult,
    PaymentState,
    RefundInput,
    RefundState,
    UnbindInput,
    UnbindState,
)

from .errors import (
    ActionRefused,
    KartuError,
    KartuTimeout,
    KartuUnavailable,
    PaymentNotFound,
)
from .refund_views import REFUNDABLE, with_refund
from .summaries import UiSummary
from .validation import _key, _text

M = TypeVar("M", bound=BaseModel)

# A shorter wait could cancel the update-with-start call before the start itself is through.
MIN_OUTCOME_WAIT = 1.0


def _outcome_wait(default: float, asked: float | None) -> float:
    return max(default if asked is None else asked, MIN_OUTCOME_WAIT)


def _not_found(err: BaseException) -> bool:
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


def _unavailable(err: RPCError) -> KartuUnavailable:
    return KartuUnavailable(f"Temporal refused the call ({err.status.name}): {err.message}")


def _application_error(err: WorkflowUpdateFailedError) -> ApplicationError | None:
    cause: BaseException | None = err.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    return cause


class _NoSuchUpdate(Exception):
    """The workflow has no handler of this update (a worker older than the client)."""


def _unknown_update(cause: ApplicationError, update: str) -> bool:
    # The SDK rejects an update nobody handles with this RuntimeError (workflow side).
    return cause.type == "RuntimeError" and f"'{update}' expected but not found" in cause.message


async def _read_start_error(start: WithStartWorkflowOperation) -> None:
    """The start operation keeps its outcome for ``workflow_handle()``; after a failed
    update-with-start it holds the start's error, which asyncio would log as "exception never
    retrieved" unless read. It is set by the time the call raised; the zero timeout only
    guards against an SDK that left it unset (nothing to read then)."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        async with asyncio.timeout(0):
            await start.workflow_handle()


class ClientCore:
    """The Temporal client and the mechanics the API methods share (``KartuClient`` adds the
    methods, one module per concern)."""

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str = DEFAULT_TASK_QUEUE,
        outcome_timeout: float = 30.0,
    ) -> None:
        converter = client.data_converter.payload_converter_class
        if converter is not pydantic_data_converter.payload_converter_class:
            raise ValueError("KartuClient needs a Temporal client with the pydantic converter")
        self._client = client
        self.task_queue = task_queue
        self.outcome_timeout = outcome_timeout

    @classmethod
    async def connect(
        cls,
        settings: TemporalSettings | None = None,
        *,
        outcome_timeout: float = 30.0,
        data_converter: DataConverter | None = None,
    ) -> Self:
        """Connect as the worker does (same settings, TLS, API key and data converter; pass
        ``data_converter`` when it was built beforehand, e.g. to report a codec error first)."""
        settings = settings or TemporalSettings()
        client = await connect_temporal(settings, data_converter)
        return cls(client, task_queue=settings.task_queue, outcome_timeout=outcome_timeout)

    @property
    def temporal(self) -> Client:
        return self._client

    async def check_health(self, timeout: float = 3.0) -> bool:
        """True when the Temporal frontend answers its health check."""
        try:
            async with asyncio.timeout(timeout):
                return await self._client.service_client.check_health()
        except Exception:  # refused, unreachable, timed out: all mean "not healthy" here
            return False

    # --- starting ----------------------------------------------------------------------------

    async def _update_with_start(
        self, update: Any, start: WithStartWorkflowOperation, *args: Any
    ) -> Any:
        try:
            return await self._client.execute_update_with_start_workflow(
                update, *args, start_workflow_operation=start
            )
        except RPCError as err:
            await _read_start_error(start)
            raise _unavailable(err) from None
        except (WorkflowAlreadyStartedError, WorkflowUpdateRPCTimeoutOrCancelledError):
            await _read_start_error(start)
            raise

    async def _start_or_retry(
        self,
        run: Any,
        arg: RefundInput | UnbindInput,
        workflow_id: str,
        result_type: type[RefundState] | type[UnbindState],
        retry: Callable[[Any], Awaitable[bool]],
        what: str,
        summarize: Callable[[Any], UiSummary],
    ) -> None:
        """Start ``workflow_id``, or join its running execution. If its latest run has closed
        and ``retry(its state)`` says so, start a new run with ``attempt`` + 1: reuse policy
        ALLOW_DUPLICATE for that start only, conflict policy USE_EXISTING so that two callers
        asking at once join one run. ``summarize(input)``: what the Temporal UI shows."""
        first = WorkflowIDReusePolicy.REJECT_DUPLICATE
        if await self._start(run, arg, workflow_id, first, summarize(arg)):
            return
        # Closed: a closed run's result is in its history (no wait, no replay).
        previous = await self._wait_result(workflow_id, result_type, True, self.outcome_timeout)
        if previous is None or not await retry(previous):
            return
        # A new transactionId only when the last one was spent on a definite "no" (the
        # provider replays that answer); one that got no answer, or never sent its request, is
        # asked again under the same id, so the refund of a payment stays one request.
        spent = getattr(previous, "step_spent", True)
        attempt = previous.attempt + 1 if spent else previous.attempt
        if attempt > MAX_STEP_ATTEMPTS:
            raise ActionRefused(
                f"{what} was tried {MAX_STEP_ATTEMPTS} times and last ended "
                f"{previous.status.value}: it cannot be asked again; see {workflow_id}"
            )
        again = arg.model_copy(update={"attempt": attempt})
        reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE
        await self._start(run, again, workflow_id, reuse, summarize(again))

    async def _start(
        self,
        run: Any,
        arg: BaseModel,
        workflow_id: str,
        reuse: WorkflowIDReusePolicy,
        ui: UiSummary,
    ) -> bool:
        """Start (or join the running) ``workflow_id``; False if refused because it closed."""
        try:
            await self._client.start_workflow(
                run,
                arg,
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=reuse,
                **ui.start_options(),
            )
        except WorkflowAlreadyStartedError:
            return False
        except RPCError as err:
            raise _unavailable(err) from None
        return True

    # --- moving a payment --------------------------------------------------------------------

    async def _action(
        self, workflow_id: str, update: str, command: BaseModel, key: str | None, verb: str
    ) -> ActionResult:
        """A payment's action update (capture, void, resolve): its answer, ActionRefused with
        the workflow's reason (and the payment's status), or PaymentNotFound."""
        try:
            return await self._run_update(
                workflow_id,
                update,
                command,
                key,
                verb,
                timeout_hint="read payment_status (or retry with the same idempotency key)",
            )
        except WorkflowUpdateFailedError as err:
            cause = _application_error(err)
            if cause is not None and _unknown_update(cause, update):
                raise _NoSuchUpdate(update) from None
            reason = cause.message if cause else f"{verb} failed"
            state = await self._payment_state(workflow_id)
            raise ActionRefused(reason, status=state.status if state else None) from None
        except RPCError as err:
            raise await self._finished_payment(err, workflow_id, verb) from None

    async def _run_update(
        self,
        workflow_id: str,
        update: str,
        command: BaseModel,
        key: str | None,
        verb: str,
        *,
        timeout_hint: str,
    ) -> ActionResult:
        """Run an action update within ``outcome_timeout``: its ActionResult, ActionRefused for
        a ``refused`` answer, KartuTimeout. A rejected update (WorkflowUpdateFailedError) and
        an RPCError are the caller's to name: what was not found depends on the workflow."""
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            async with asyncio.timeout(self.outcome_timeout):
                result = await handle.execute_update(
                    update,
                    command,
                    id=f"{verb}-{key}" if key else None,  # Temporal dedups updates by id
                    result_type=ActionResult,
                )
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise KartuTimeout(
                f"{verb} not answered within {self.outcome_timeout:g} s: it may still happen, "
                f"{timeout_hint}"
            ) from None
        if result.outcome == "refused":
            raise ActionRefused(result.reason or f"{verb} refused", result.status, result)
        return result

    async def _signal_payment(self, workflow_id: str, signal: str, command: BaseModel) -> None:
        try:
            await self._client.get_workflow_handle(workflow_id).signal(signal, command)
        except RPCError as err:
            raise await self._finished_payment(err, workflow_id, signal) from None

    async def _finished_payment(self, err: RPCError, workflow_id: str, verb: str) -> Exception:
        """What to raise when a payment's workflow did not take a signal or an update: the
        server is unavailable, there is no such payment, or it has finished."""
        if not _not_found(err):
            return _unavailable(err)
        state = await self._payment_state(workflow_id)
        if state is None:
            return PaymentNotFound(f"no payment {workflow_id.removeprefix('payment-')}")
        return ActionRefused(
            f"payment is {state.status.value} and finished: nothing to {verb}",
            status=state.status,
        )

    @staticmethod
    def _requested_by(value: str | None) -> str | None:
        return None if value is None else _text(value, "requested_by", 200)

    # --- reading -----------------------------------------------------------------------------

    async def _payment(self, payment_id: str) -> PaymentState:
        """``payment_status``: the payment's state (its refund merged in), or PaymentNotFound."""
        workflow_id = _key(payment_workflow_id, payment_id, "payment_id")
        state = await self._payment_state(workflow_id)
        if state is None:
            raise PaymentNotFound(f"no payment {payment_id}")
        return state

    async def _payment_state(self, workflow_id: str) -> PaymentState | None:
        """The payment's state, its refund by ``refund-<paymentId>`` merged in."""
        state = await self._query(workflow_id, PaymentState)
        if state is not None and state.status in REFUNDABLE:
            refund = await self._query(refund_workflow_id(state.payment_id), RefundState)
            if refund is not None:
                return with_refund(state, refund)
        return state

    async def _query(self, workflow_id: str, result_type: type[M]) -> M | None:
        """The workflow's ``state`` query; None if there is no such workflow."""
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            return await handle.query("state", result_type=result_type)
        except RPCError as err:
            if _not_found(err):
                return None
            raise _unavailable(err) from None
        except WorkflowQueryFailedError as err:
            # A closed workflow's result is its final state and needs no replay: a query that
            # failed (e.g. a history this SDK cannot replay) must not hide a finished payment.
            with contextlib.suppress(RPCError):
                if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                    with contextlib.suppress(WorkflowFailureError):
                        return await self._client.get_workflow_handle(
                            workflow_id, result_type=result_type
                        ).result()
            raise KartuError(f"state of {workflow_id} could not be read: {err}") from None

    async def _wait_result(
        self, workflow_id: str, result_type: type[M], wait: bool, timeout: float
    ) -> M | None:
        """The workflow's result (its final state) within ``timeout``, else its state so far."""
        if wait:
            handle: WorkflowHandle[Any, M] = self._client.get_workflow_handle(
                workflow_id, result_type=result_type
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    try:
                        return await handle.result()
                    except WorkflowFailureError:
                        pass  # failed or terminated: its state still tells what happened
                    except RPCError as err:
                        if not _not_found(err):
                            raise _unavailable(err) from None
                        return None
        return await self._query(workflow_id, result_type)

    @staticmethod
    async def _poll(
        read: Callable[[], Awaitable[M]], done: Callable[[M], bool], timeout: float, what: str
    ) -> M:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            value = await read()
            if done(value):
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                status = getattr(value, "status", "?")
                raise KartuTimeout(f"{what} still {status} after {timeout:g} s")
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 1.0)
