"""Access tokens: 28 characters, valid 3600 s of the sandbox clock, announced as ``"3599"``."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta

from .clock import db_time, from_db
from .db import Database

TOKEN_LENGTH = 28
TOKEN_LIFETIME = timedelta(seconds=3600)
# Ayoconnect announces one second less than the lifetime, as a string.
EXPIRES_IN = "3599"
_ALPHABET = string.ascii_letters + string.digits


def new_access_token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def issue(self, client_id: str, now: datetime) -> str:
        token = new_access_token()
        self.db.execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?)",
            (token, client_id, db_time(now), db_time(now + TOKEN_LIFETIME)),
        )
        return token

    def is_valid(self, token: str, now: datetime) -> bool:
        row = self.db.row("SELECT expires_at FROM tokens WHERE token = ?", (token,))
        return row is not None and now < from_db(row["expires_at"])
