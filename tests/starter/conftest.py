"""Fixtures of the starter suite: the shared Kartu stack (``tests.kartu_stack``) and its
``KartuClient``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from starter.client import KartuClient
from tests.kartu_stack import Stack, acquire, new_key, release


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    yield await acquire(tmp_path_factory.mktemp("kartu-stack"))
    await release()


@pytest.fixture
def kartu(stack: Stack) -> KartuClient:
    return stack.kartu


@pytest.fixture
def key() -> str:
    return new_key()
