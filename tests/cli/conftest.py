"""Fixtures of the CLI suite: ``kartu`` commands (``cli_stack``: in this process, or the console
script where the process is the point) against a real stack.

``kartu_up`` is the session's CLI stack (root conftest's ``local_stacks``): what ``kartu up``
runs, UI included, on free ports in a temporary data directory, with a short sandbox
authorization window so the demo's expiry takes seconds. ``kartu up`` itself (its flags, its
output, SIGTERM and SIGINT, a restart on the same directory) is ``test_cli_up.py``'s.
``card`` / ``challenge_card`` are registered through the CLI alone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cli_stack import CHALLENGE_CARD, FRICTIONLESS_CARD, RegisteredCard, Up, register

# Long enough for a test to authorize then capture or void on a loaded machine, short enough
# for the demo's expiry (it waits for it).
SANDBOX_AUTH_WINDOW = timedelta(seconds=30)


@pytest.fixture(scope="session")
async def kartu_up(local_stacks: Any) -> Up:
    local = await local_stacks.start("cli", headless=False, sandbox_auth_window=SANDBOX_AUTH_WINDOW)
    return Up.of(local)


@pytest.fixture(scope="session")
def card(kartu_up: Up) -> RegisteredCard:
    return register(kartu_up, FRICTIONLESS_CARD)


@pytest.fixture(scope="session")
def challenge_card(kartu_up: Up, card: RegisteredCard) -> RegisteredCard:
    return register(kartu_up, CHALLENGE_CARD, card.customer_id)
