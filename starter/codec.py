"""Moved: the payload codec is the top-level package ``codec`` (worker and starter both import it,
it imports neither). This alias stays only for ``starter/stack.py`` and the test-stack fixtures,
which are being reworked beside it; import ``codec`` in new code."""

from __future__ import annotations

from codec import *  # noqa: F403
from codec import __all__  # noqa: F401
