"""``python -m sandbox [--host H] [--port P] [--db PATH] [--callback-url URL]``

Serves the sandbox in the foreground (Ctrl-C stops it). Every option defaults to its
``SANDBOX_*`` setting; merchant credentials come from ``AYOCONNECT_*`` like the client's.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from .app import create_app
from .settings import SandboxSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", help="bind address (SANDBOX_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (SANDBOX_PORT, default 8090)")
    parser.add_argument("--db", dest="db_path", help="SQLite file (SANDBOX_DB_PATH, :memory:)")
    parser.add_argument("--callback-url", help="where callbacks go (SANDBOX_CALLBACK_URL)")
    parser.add_argument("--public-base-url", help="base of page links (SANDBOX_PUBLIC_BASE_URL)")
    parser.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    settings = SandboxSettings(**overrides)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http="h11",
        lifespan="on",
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
