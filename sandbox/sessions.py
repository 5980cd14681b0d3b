"""Customer-facing sessions: the registration webview and the payment's 3DS challenge.

A session lives ``session_seconds`` on the sandbox clock. Its ``data`` holds what the pages need
between steps (redirect URLs, the masked card awaiting OTP), never a clear card number or CVV.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from .clock import db_time, from_db, wire_time
from .db import Database


class SessionKind(StrEnum):
    WEBVIEW = "webview"
    THREE_DS = "3ds"


class SessionState(StrEnum):
    CARD = "card"  # webview: waiting for the card form
    OTP = "otp"  # webview: card accepted, waiting for the OTP
    CHALLENGE = "challenge"  # 3DS: waiting for the OTP
    DONE = "done"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Session:
    session_id: str
    kind: SessionKind
    state: SessionState
    reference: str  # webview: referenceNumber; 3DS: the payment's invoiceNumber
    data: dict[str, Any]
    expires_at: datetime
    created_at: datetime


def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def _session(row: Any) -> Session:
    return Session(
        session_id=row["session_id"],
        kind=SessionKind(row["kind"]),
        state=SessionState(row["state"]),
        reference=row["reference"],
        data=json.loads(row["data"]),
        expires_at=from_db(row["expires_at"]),
        created_at=from_db(row["created_at"]),
    )


class Sessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, session: Session) -> None:
        at = db_time(session.created_at)
        self.db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.session_id,
                session.kind.value,
                session.state.value,
                session.reference,
                json.dumps(session.data),
                db_time(session.expires_at),
                at,
                at,
            ),
        )

    def get(self, session_id: str, kind: SessionKind) -> Session | None:
        row = self.db.row(
            "SELECT * FROM sessions WHERE session_id = ? AND kind = ?", (session_id, kind.value)
        )
        return None if row is None else _session(row)

    def save(
        self,
        session: Session,
        now: datetime,
        *,
        state: SessionState,
        data: dict[str, Any] | None = None,
    ) -> Session:
        saved = replace(session, state=state, data=session.data if data is None else data)
        self.db.execute(
            "UPDATE sessions SET state = ?, data = ?, updated_at = ? WHERE session_id = ?",
            (saved.state.value, json.dumps(saved.data), db_time(now), saved.session_id),
        )
        return saved

    def due(self, now: datetime) -> list[Session]:
        """Open sessions whose time is up."""
        rows = self.db.rows(
            "SELECT * FROM sessions WHERE state IN (?, ?, ?) AND expires_at <= ?",
            (
                SessionState.CARD.value,
                SessionState.OTP.value,
                SessionState.CHALLENGE.value,
                db_time(now),
            ),
        )
        return [_session(row) for row in rows]

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {
                "kind": row["kind"],
                "state": row["state"],
                "reference": row["reference"],
                "expiresAt": wire_time(from_db(row["expires_at"])),
            }
            for row in self.db.rows("SELECT * FROM sessions ORDER BY created_at")
        ]
