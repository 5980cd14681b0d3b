"""``python -m gateway``: the gateway on KARTU_GATEWAY_HOST:KARTU_GATEWAY_PORT with uvicorn.

Temporal from TEMPORAL_* / KARTU_TASK_QUEUE (shared with the worker), the callback secret from
AYOCONNECT_*, the API key from KARTU_GATEWAY_API_KEY (see ``gateway.settings``).
"""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from ayoconnect.settings import AyoconnectSettings
from codec import CodecConfigError
from starter.client import KartuClient
from starter.connection import kartu_data_converter
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
        # Codec keys now, not at the first connection: missing ones are a setting to report.
        converter = kartu_data_converter()
        app = create_app(
            lambda: KartuClient.connect(temporal, data_converter=converter),
            settings,
            ayoconnect_settings=ayoconnect,
        )
    except (
        GatewayConfigError,
        ValidationError,
        tracing.TracingConfigError,
        CodecConfigError,
    ) as exc:
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
