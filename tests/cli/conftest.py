"""Fixtures of the CLI suite: the real ``kartu`` console script against a real stack.

``kartu_up`` starts ``kartu up --json`` once per session (free ports, a temporary data
directory, a short sandbox authorization window so the demo's expiry takes seconds) and stops it
with SIGTERM at the end. ``card`` / ``challenge_card`` are registered through the CLI alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_stack import (
    CHALLENGE_CARD,
    FRICTIONLESS_CARD,
    SANDBOX_AUTH_WINDOW,
    RegisteredCard,
    Up,
    register,
    start_up,
)


@pytest.fixture(scope="session")
def kartu_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    up = start_up(
        tmp_path_factory.mktemp("kartu-cli") / "data",
        None,
        "--sandbox-auth-window",
        SANDBOX_AUTH_WINDOW,
    )
    try:
        yield up
    finally:
        try:
            up.stop()
        finally:
            if up.process.poll() is None:
                up.kill_all()


@pytest.fixture(scope="session")
def card(kartu_up: Up) -> RegisteredCard:
    return register(kartu_up, FRICTIONLESS_CARD)


@pytest.fixture(scope="session")
def challenge_card(kartu_up: Up, card: RegisteredCard) -> RegisteredCard:
    return register(kartu_up, CHALLENGE_CARD, card.customer_id)
