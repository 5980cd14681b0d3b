"""Moved: reconciliation runs and their schedule are ``starter.client.reconcile``. This alias stays
only for ``starter/stack.py`` (``kartu up`` creates the schedule), which is being reworked beside
it; import ``starter.client.reconcile`` in new code."""

from __future__ import annotations

from starter.client.reconcile import *  # noqa: F403
from starter.client.reconcile import ensure_local_schedule  # noqa: F401
