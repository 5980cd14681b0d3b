"""Fixtures of the gateway suite: the shared Kartu stack (``stack``: the root conftest's
``inprocess_stack``), an HTTP client on the gateway, fresh keys."""

from __future__ import annotations

import httpx
import pytest

from starter.client import KartuClient
from tests.kartu_stack import Stack, new_key


@pytest.fixture(scope="session")
def stack(inprocess_stack: Stack) -> Stack:
    return inprocess_stack


@pytest.fixture
def kartu(stack: Stack) -> KartuClient:
    return stack.kartu


@pytest.fixture
def http(stack: Stack) -> httpx.AsyncClient:
    """The gateway, without credentials: tests add the API key where they need it."""
    assert stack.http is not None
    return stack.http


@pytest.fixture
def key() -> str:
    return new_key()
