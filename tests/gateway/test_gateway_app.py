"""Gateway wiring: a client factory awaited at startup, insecure dev mode, health when Temporal
is away."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from gateway import GatewaySettings, create_app
from starter.client import KartuClient
from starter.settings import TemporalSettings
from tests.kartu_stack import Stack
from tests.stack_support import free_port


async def test_factory_and_insecure_dev_mode(
    stack: Stack, key: str, monkeypatch: pytest.MonkeyPatch
):
    # The factory connects the way a deployed gateway does: settings and codec keys from the
    # environment (here the stack's keys; without any it would refuse to start).
    assert stack.local.codec_keys_file is not None
    monkeypatch.setenv("KARTU_CODEC_KEYS_FILE", str(stack.local.codec_keys_file))
    temporal = TemporalSettings(TEMPORAL_ADDRESS=stack.devserver.address)
    app = create_app(
        lambda: KartuClient.connect(temporal),
        GatewaySettings(insecure_dev=True, host="127.0.0.1", metrics_port=0),  # not 9465
        ayoconnect_settings=stack.ayoconnect,
    )
    url = await stack.serve(app)
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/healthz")).json()["temporal"] is True
        # No API key configured (dev mode): the REST API answers without one.
        answer = await http.get(f"/payments/{key}")
        assert answer.status_code == 404 and answer.json()["error"] == f"no payment {key}"


async def test_healthz_says_when_temporal_is_away(stack: Stack):
    nowhere = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    app = create_app(
        KartuClient(nowhere), stack.gateway_settings, ayoconnect_settings=stack.ayoconnect
    )
    url = await stack.serve(app)
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "temporal": False}
