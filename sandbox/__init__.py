"""A faithful local Ayoconnect Card Acceptance server: same contract, same rules, a ledger in
SQLite, real webview and 3DS pages, signed callbacks, a movable clock and fault injection.

    python -m sandbox                       # http://127.0.0.1:8090
    with SandboxServer(settings) as s: ...  # in tests, on a free port
"""

from .app import create_app
from .server import AppServer, SandboxServer, run_sandbox, run_sandbox_async
from .settings import SandboxSettings
from .test_cards import TEST_CARDS, TEST_OTP

__all__ = [
    "TEST_CARDS",
    "TEST_OTP",
    "AppServer",
    "SandboxServer",
    "SandboxSettings",
    "create_app",
    "run_sandbox",
    "run_sandbox_async",
]
