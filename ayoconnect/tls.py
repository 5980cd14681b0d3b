"""One TLS context per process for Kartu's HTTP clients.

httpx builds a new ``ssl.SSLContext`` for every client it creates, and building one loads the
whole CA bundle: ~25 ms of CPU. A process that makes a client per call (the customer's webview
and 3DS pages, the sandbox's control client, ``kartu sandbox``, the tests: hundreds of clients
in a test run, ~40 % of the sandbox suite's CPU) pays that each time. The context is the one
httpx 0.28 builds (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` first, then certifi's bundle), read from
the environment once per process: verification stays on, the bundle is read once. Shared between
threads and event loops; httpcore sets its ALPN list on it per connection, the same list for
every client here (none uses HTTP/2).
"""

from __future__ import annotations

import os
import ssl
from functools import cache


@cache
def tls_context() -> ssl.SSLContext:
    """The process's client TLS context, built on first use."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi  # httpx's own dependency

    return ssl.create_default_context(cafile=certifi.where())
