"""Time-driven transitions: authorizations whose window passed become VOIDED, sessions whose
300 s passed expire (an expired 3DS challenge fails its payment).

Swept before every API call, on every page, when the clock is advanced, and every
``sweep_interval_seconds`` in the background, so the ledger never shows a stale state.
"""

from __future__ import annotations

from .charges import finish_authentication
from .context import SandboxContext
from .reversals import expire_authorization
from .sessions import SessionKind, SessionState


def sweep(ctx: SandboxContext) -> int:
    """Apply every transition that is due; returns how many there were."""
    now = ctx.clock.now()
    authorizations = ctx.ledger.authorizations_due(now)
    sessions = ctx.sessions.due(now)
    if not authorizations and not sessions:
        return 0
    with ctx.db.transaction():
        for payment in authorizations:
            expire_authorization(ctx, payment, now)
        for session in sessions:
            if session.kind is SessionKind.THREE_DS:
                finish_authentication(ctx, session, passed=False, expired=True)
            else:
                ctx.sessions.save(session, now, state=SessionState.EXPIRED)
    return len(authorizations) + len(sessions)
