"""``python -m gateway``: the gateway on KARTU_GATEWAY_HOST:KARTU_GATEWAY_PORT with uvicorn.

Temporal from TEMPORAL_* / KARTU_TASK_QUEUE (shared with the worker), the callback secret from
AYOCONNECT_*, the API key from KARTU_GATEWAY_API_KEY (see ``gateway.settings``).
"""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from ayoconnect.settings import AyoconnectSettings
from starter.client import KartuClient
from starter.settings import TemporalSettings
from telemetry import tracing
from telemetry.logs import configure_logging

from .app import create_app
from .settings import GatewayConfigError, GatewaySettings


def main() -> int:
    try:
        settings = GatewaySettings()
        temporal = TemporalSettings()
        ayoconnect = AyoconnectSettings()
        tracing.configure_tracing("kartu-gateway")  # before create_app: it instruments the app
        app = create_app(
            lambda: KartuClient.connect(temporal), settings, ayoconnect_settings=ayoconnect
        )
    except (GatewayConfigError, ValidationError, tracing.TracingConfigError) as exc:
        print(f"kartu gateway: {exc}", file=sys.stderr)
        return 2
    configure_logging("kartu-gateway", level=settings.log_level)
    # access_log off: uvicorn's would print card tokens from paths; the app logs its own.
    # log_config None: uvicorn's loggers go through the root handler above, not its own.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
