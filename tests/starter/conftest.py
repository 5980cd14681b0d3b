"""Fixtures of the starter suite: the shared Kartu stack (``stack``: the root conftest's
``inprocess_stack``), its ``KartuClient``."""

from __future__ import annotations

import pytest

from starter.client import KartuClient
from tests.kartu_stack import Stack, new_key


@pytest.fixture
def stack(inprocess_stack: Stack) -> Stack:
    return inprocess_stack


@pytest.fixture
def kartu(stack: Stack) -> KartuClient:
    return stack.kartu


@pytest.fixture
def key() -> str:
    return new_key()
