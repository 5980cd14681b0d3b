"""Kartu's HTTP face: Ayoconnect callbacks to workflow signals, REST for backends.

python -m gateway          # KARTU_GATEWAY_HOST / _PORT (8080), KARTU_GATEWAY_API_KEY
"""

from .app import create_app
from .settings import GatewayConfigError, GatewaySettings

__all__ = ["GatewayConfigError", "GatewaySettings", "create_app"]
