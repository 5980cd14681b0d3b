"""Fault injection: configured by env or at run time, deterministic (next N) or by seeded rate,
and always counted."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from sandbox import SandboxSettings
from sandbox.faults import FaultInjector, FaultOperation, FaultsConfig


async def _pay_body(wire: Any, receiver: Any, tid: str) -> dict[str, Any]:
    binding = await wire.register(receiver)
    return {
        "transactionId": tid,
        "customerId": binding["customerId"],
        "operation": "PAY",
        "cardToken": binding["cardToken"],
        "order": {"id": "o-fault", "amount": "75000.00"},
    }


async def test_fail_next_refuses_then_recovers(wire: Any, receiver: Any, control: Any) -> None:
    body = await _pay_body(wire, receiver, "f-next-1")
    await control.set_faults({"create_charge": {"fail_next": 2, "status": 503}})
    for _ in range(2):
        refused = await wire.post("create_charge_path", body)
        assert refused.status_code == 503
        assert refused.json()["responseCode"] == "5035432"  # SYSTEM_ERROR
        assert refused.headers["retry-after"] == "1"
    assert await control.payment("f-next-1") is None, "a refused call applies nothing"
    assert (await wire.post("create_charge_path", body)).status_code == 200
    faults = await control.faults()
    assert faults["counts"]["create_charge"]["errors"] == 2
    assert faults["counts"]["create_charge"]["calls"] == 3
    assert faults["faults"]["create_charge"] == {"fail_next": 0, "status": 503}  # spent


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"status": 500}, 500, "5005432"),
        ({"status": 429}, 429, "4295420"),
        ({"status": 504}, 504, "5045433"),
        ({"status": 400, "case": "TIMED_OUT"}, 400, "4005433"),
    ],
)
async def test_injected_error_codes(
    wire: Any, receiver: Any, control: Any, fault: dict[str, Any], status: int, code: str
) -> None:
    body = await _pay_body(wire, receiver, "f-code-1")
    await control.set_faults({"create_charge": {"fail_next": 1, **fault}})
    response = await wire.post("create_charge_path", body)
    assert (response.status_code, response.json()["responseCode"]) == (status, code)


async def test_drop_applies_then_closes_the_connection(
    wire: Any, receiver: Any, control: Any
) -> None:
    body = await _pay_body(wire, receiver, "f-drop-1")
    await control.set_faults({"create_charge": {"drop_next": 1}})
    with pytest.raises(httpx.RemoteProtocolError):
        await wire.post("create_charge_path", body)
    payment = await control.payment("f-drop-1")
    assert payment is not None and payment["state"] == "SUCCESS"
    replay = await wire.post("create_charge_path", body)
    assert replay.status_code == 200
    assert replay.json()["invoiceNumber"] == payment["invoiceNumber"]
    assert (await control.faults())["counts"]["create_charge"]["drops"] == 1


async def test_delay_applies_then_answers_late(wire: Any, receiver: Any, control: Any) -> None:
    body = await _pay_body(wire, receiver, "f-delay-1")
    await control.set_faults({"create_charge": {"delay_next": 1, "delay_ms": 250}})
    started = time.monotonic()
    response = await wire.post("create_charge_path", body)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.25


async def test_latency_delays_every_call(wire: Any, control: Any) -> None:
    await control.set_faults({"cards_list": {"latency_ms": 100}})
    started = time.monotonic()
    response = await wire.get("cards_list_path", {"transactionId": "l1", "customerId": "NOBODY1"})
    assert response.status_code == 404
    assert time.monotonic() - started >= 0.1
    assert (await control.faults())["counts"]["cards_list"]["latency"] == 1


async def test_token_endpoint_faults(wire: Any, control: Any) -> None:
    await control.set_faults({"token": {"fail_next": 1, "status": 503}})
    response = await wire.http.post(
        wire.settings.token_path,
        params={"grant_type": "client_credentials"},
        data={"client_id": "kartu-local-client", "client_secret": "kartu-local-secret"},
    )
    assert response.status_code == 503
    assert response.json()["responseCode"] == "5030032"


async def test_delete_clears_config_and_counts(control: Any) -> None:
    await control.set_faults({"void": {"error_rate": 0.5}})
    cleared = await control.clear_faults()
    assert cleared["faults"] == {} and cleared["counts"] == {}


@pytest.mark.parametrize(
    "config",
    [
        {"charge": {"fail_next": 1}},
        {"create_charge": {"duplicate_next": 1}},
        {"callback": {"fail_next": 1}},
        {"create_charge": {"error_rate": 2}},
        {"create_charge": {"status": 200}},
        {"create_charge": {"case": "NOPE"}},
        {"create_charge": {"fail_nxt": 1}},
    ],
)
async def test_invalid_fault_config_is_refused(wire: Any, config: dict[str, Any]) -> None:
    response = await wire.http.put("/_sandbox/faults", json=config)
    assert response.status_code == 400
    assert response.json()["responseCode"].startswith("400")


def test_rates_are_seeded() -> None:
    config = FaultsConfig.model_validate(
        {"create_charge": {"error_rate": 0.3, "status": [500, 503, 429]}}
    )

    def draw() -> list[int | None]:
        injector = FaultInjector(config, seed=7)
        plans = [injector.plan_call(FaultOperation.CREATE_CHARGE) for _ in range(200)]
        return [p.error.status if p.error else None for p in plans]

    first, second = draw(), draw()
    assert first == second
    errors = [s for s in first if s is not None]
    assert 30 < len(errors) < 90
    assert set(errors) == {500, 503, 429}


def test_faults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SANDBOX_FAULTS",
        '{"create_charge": {"fail_next": 2, "status": 503}, "callback": {"drop_rate": 0.1}}',
    )
    monkeypatch.setenv("SANDBOX_FAULT_SEED", "42")
    settings = SandboxSettings()
    assert settings.faults.operations[FaultOperation.CREATE_CHARGE].fail_next == 2
    assert settings.faults.operations[FaultOperation.CALLBACK].drop_rate == 0.1
    injector = FaultInjector(settings.faults, settings.fault_seed)
    assert injector.plan_call(FaultOperation.CREATE_CHARGE).error is not None
    injector.reset()  # back to the configured faults: fail_next counts from 2 again
    assert injector.snapshot()["faults"]["create_charge"]["fail_next"] == 2
