"""``python -m sandbox [--host H] [--port P] [--db PATH] [--callback-url URL]``

Serves the sandbox in the foreground (Ctrl-C stops it). Every option defaults to its
``SANDBOX_*`` setting; merchant credentials come from ``AYOCONNECT_*`` like the client's.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from telemetry import logs, tracing

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
    logs.configure_logging("kartu-sandbox", level=settings.log_level)
    tracing.configure_tracing("kartu-sandbox")
    app = create_app(settings)
    tracing.instrument_app(app)
    # Ayoconnect's X-Correlation-ID on the lines of each request: the worker's lines carry it too.
    app.add_middleware(logs.LogContext, correlation_header="X-Correlation-ID")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http="h11",
        lifespan="on",
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers go through the handler configure_logging set
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
