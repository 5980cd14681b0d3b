"""Fault injection: refused calls, latency, answers lost after the work was done, and callback
mischief, per operation, by rate (seeded) or for the next N calls (deterministic tests).

Ambiguous faults are the ones that hurt payments: the sandbox APPLIES the operation, stores the
idempotent answer, then drops the connection (``drop``) or answers late (``delay``), so the
client cannot know whether money moved and must look the payment up.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ayoconnect.codes import GatewayCode, ServiceCode

# Where the sandbox app keeps the server's own ``send``, so a dropped answer can close the socket.
RAW_SEND_KEY = "sandbox.raw_send"


class FaultOperation(StrEnum):
    TOKEN = "token"
    GENERATE_WEBVIEW = "generate_webview"
    CREATE_CHARGE = "create_charge"
    PAYMENT_STATUS = "payment_status"
    CARDS_LIST = "cards_list"
    UNBIND = "unbind"
    VOID = "void"
    REFUND = "refund"
    CALLBACK = "callback"


SERVICE_OF: dict[FaultOperation, ServiceCode] = {
    FaultOperation.TOKEN: ServiceCode.ACCESS_TOKEN,
    FaultOperation.GENERATE_WEBVIEW: ServiceCode.GENERATE_WEBVIEW,
    FaultOperation.CREATE_CHARGE: ServiceCode.CREATE_CHARGE,
    FaultOperation.PAYMENT_STATUS: ServiceCode.PAYMENT_STATUS,
    FaultOperation.CARDS_LIST: ServiceCode.CARDS_LIST,
    FaultOperation.UNBIND: ServiceCode.UNBIND,
    FaultOperation.VOID: ServiceCode.VOID,
    FaultOperation.REFUND: ServiceCode.REFUND,
}

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]
Millis = Annotated[int, Field(ge=0, le=600_000)]
ErrorStatus = Annotated[int, Field(ge=400, le=599)]


class OperationFaults(BaseModel):
    """Faults of one operation. Rates draw from the seeded random; ``*_next`` counts down."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: Millis = 0  # every call waits this long before it is handled
    error_rate: Rate = 0.0  # refused before anything is applied
    fail_next: Count = 0
    status: ErrorStatus | list[ErrorStatus] = 503  # a list: one picked at random per error
    case: str | None = None  # gateway code name in the error body; default from the status
    drop_rate: Rate = 0.0  # applied, then the connection closes with no answer (callback: lost)
    drop_next: Count = 0
    delay_rate: Rate = 0.0  # applied, then answered after delay_ms (callback: delivered late)
    delay_next: Count = 0
    delay_ms: Millis = 0
    duplicate_rate: Rate = 0.0  # callback only: delivered twice
    duplicate_next: Count = 0
    reorder_rate: Rate = 0.0  # callback only: held back until the next callback went out
    reorder_next: Count = 0

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, list) and not value:
            raise ValueError("status list must not be empty")
        return value

    @field_validator("case")
    @classmethod
    def _case(cls, value: str | None) -> str | None:
        if value is not None and value not in GatewayCode.__members__:
            raise ValueError("case must be a gateway code name such as TIMED_OUT")
        return value

    def is_empty(self) -> bool:
        return self == OperationFaults()


class FaultsConfig(BaseModel):
    """``SANDBOX_FAULTS`` and ``PUT /_sandbox/faults``: operation name -> its faults."""

    model_config = ConfigDict(extra="forbid")

    operations: dict[FaultOperation, OperationFaults] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        # Accept the flat form {"create_charge": {...}} as well as {"operations": {...}}.
        if isinstance(data, dict) and "operations" not in data:
            return {"operations": data}
        return data

    @model_validator(mode="after")
    def _fits_operation(self) -> FaultsConfig:
        callback_only = {"duplicate_rate", "duplicate_next", "reorder_rate", "reorder_next"}
        request_only = {"latency_ms", "error_rate", "fail_next"}
        for op, faults in self.operations.items():
            used = faults.model_fields_set
            wrong = used & (request_only if op is FaultOperation.CALLBACK else callback_only)
            if wrong:
                raise ValueError(f"{op.value}: {', '.join(sorted(wrong))} do not apply")
        return self

    def as_json(self) -> dict[str, Any]:
        return {op.value: f.model_dump(exclude_unset=True) for op, f in self.operations.items()}


@dataclass(frozen=True)
class InjectedError:
    status: int
    case: GatewayCode


@dataclass(frozen=True)
class CallPlan:
    """What happens to one API call, decided when it arrives."""

    latency_ms: int = 0
    error: InjectedError | None = None
    drop: bool = False
    delay_ms: int = 0


@dataclass(frozen=True)
class CallbackPlan:
    drop: bool = False
    duplicate: bool = False
    reorder: bool = False
    delay_ms: int = 0


def default_case(status: int) -> GatewayCode:
    if status == 429:
        return GatewayCode.EXCEEDED_RETRY_LIMIT
    if status in (400, 408, 504):
        return GatewayCode.TIMED_OUT
    if status >= 500:
        return GatewayCode.SYSTEM_ERROR
    return GatewayCode.UNSPECIFIED_FAILURE


_COUNTERS = ("calls", "latency", "errors", "drops", "delays", "duplicates", "reorders")


class FaultInjector:
    def __init__(self, config: FaultsConfig, seed: int = 0) -> None:
        self._initial = config
        self._seed = seed
        self.reset()

    def reset(self) -> None:
        """Back to the configured faults (settings), fresh counters and random sequence."""
        self._config = self._initial.model_copy(deep=True)
        self._random = random.Random(self._seed)
        self._counts: dict[str, dict[str, int]] = {}

    def configure(self, config: FaultsConfig) -> None:
        self._config = config.model_copy(deep=True)

    def clear(self) -> None:
        self._config = FaultsConfig()
        self._counts = {}

    def snapshot(self) -> dict[str, Any]:
        return {"seed": self._seed, "faults": self._config.as_json(), "counts": self._counts}

    def plan_call(self, op: FaultOperation) -> CallPlan:
        self._count(op, "calls")
        faults = self._config.operations.get(op)
        if faults is None:
            return CallPlan()
        if faults.latency_ms:
            self._count(op, "latency")
        if self._fires(faults, "fail_next", faults.error_rate):
            self._count(op, "errors")
            status = faults.status
            chosen = self._random.choice(status) if isinstance(status, list) else status
            case = GatewayCode[faults.case] if faults.case else default_case(chosen)
            return CallPlan(faults.latency_ms, error=InjectedError(chosen, case))
        if self._fires(faults, "drop_next", faults.drop_rate):
            self._count(op, "drops")
            return CallPlan(faults.latency_ms, drop=True)
        if self._fires(faults, "delay_next", faults.delay_rate):
            self._count(op, "delays")
            return CallPlan(faults.latency_ms, delay_ms=faults.delay_ms)
        return CallPlan(faults.latency_ms)

    def plan_callback(self) -> CallbackPlan:
        op = FaultOperation.CALLBACK
        self._count(op, "calls")
        faults = self._config.operations.get(op)
        if faults is None:
            return CallbackPlan()
        if self._fires(faults, "drop_next", faults.drop_rate):
            self._count(op, "drops")
            return CallbackPlan(drop=True)
        duplicate = self._fires(faults, "duplicate_next", faults.duplicate_rate)
        reorder = self._fires(faults, "reorder_next", faults.reorder_rate)
        delay = self._fires(faults, "delay_next", faults.delay_rate)
        for fired, name in ((duplicate, "duplicates"), (reorder, "reorders"), (delay, "delays")):
            if fired:
                self._count(op, name)
        return CallbackPlan(
            duplicate=duplicate, reorder=reorder, delay_ms=faults.delay_ms if delay else 0
        )

    def _fires(self, faults: OperationFaults, next_field: str, rate: float) -> bool:
        remaining: int = getattr(faults, next_field)
        if remaining > 0:
            setattr(faults, next_field, remaining - 1)
            return True
        return rate > 0 and self._random.random() < rate

    def _count(self, op: FaultOperation, name: str) -> None:
        counts = self._counts.setdefault(op.value, dict.fromkeys(_COUNTERS, 0))
        counts[name] += 1


class DropConnection(Response):
    """Closes the client's connection without an answer: the operation was already applied."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_send = scope.get(RAW_SEND_KEY)
        transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "close"):
            transport.close()
            # Let the server see the connection lost before the app returns, so it does not
            # try (and log its failure) to send a 500 of its own.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return
        # Other servers: promise a body and never send it; the server then closes the socket.
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
        )
