"""The ledger's SQLite file: schema, transactions and the small key-value ``meta`` table.

One connection serves the whole app (the server runs one event loop); a lock keeps it safe if a
test or tool touches it from another thread. A file database runs in WAL mode, so a crash or a
restart loses nothing that was answered.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, client_id TEXT NOT NULL, issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY, name TEXT, email TEXT, phone_number TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cards (
    card_token TEXT PRIMARY KEY, customer_id TEXT NOT NULL, masked_card TEXT NOT NULL,
    brand TEXT NOT NULL, expiry_month TEXT NOT NULL, expiry_year TEXT NOT NULL,
    outcome TEXT NOT NULL, status TEXT NOT NULL, reference_number TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cards_customer ON cards (customer_id);
CREATE TABLE IF NOT EXISTS payments (
    invoice_number TEXT PRIMARY KEY, original_transaction_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL, operation TEXT NOT NULL, status TEXT NOT NULL,
    amount TEXT NOT NULL, currency TEXT NOT NULL, order_id TEXT NOT NULL,
    authorized_amount TEXT, captured_amount TEXT, refunded_amount TEXT,
    card_token TEXT, masked_card TEXT NOT NULL, brand TEXT NOT NULL, outcome TEXT NOT NULL,
    redirect_url TEXT, authorization_expires_at TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_auth_expiry
    ON payments (status, authorization_expires_at);
CREATE TABLE IF NOT EXISTS operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, invoice_number TEXT NOT NULL,
    operation TEXT NOT NULL, transaction_id TEXT, amount TEXT, status TEXT NOT NULL,
    response_code TEXT NOT NULL, correlation_id TEXT, note TEXT, at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_invoice ON operations (invoice_number);
CREATE INDEX IF NOT EXISTS operations_transaction ON operations (transaction_id);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
    reference TEXT NOT NULL, data TEXT NOT NULL, expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (state, expires_at);
CREATE TABLE IF NOT EXISTS idempotency (
    transaction_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, reference TEXT NOT NULL,
    url TEXT, body TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS callback_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, callback_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL, url TEXT, http_status INTEGER, error TEXT, fault TEXT,
    at TEXT NOT NULL
);
"""

# Cleared by a reset; meta keeps the dev key, so a client's copy of the public key stays valid.
RESET_TABLES = (
    "tokens",
    "customers",
    "cards",
    "payments",
    "operations",
    "sessions",
    "idempotency",
    "callbacks",
    "callback_attempts",
)


class Database:
    def __init__(self, path: str) -> None:
        self.path = path
        # Autocommit mode: transactions are explicit (transaction()), never implicit.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._closed = False
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; nested blocks are savepoints inside the outer transaction."""
        with self._lock:
            name = f"sp{self._depth}"
            self._conn.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._conn.execute("ROLLBACK")
                else:
                    self._conn.execute(f"ROLLBACK TO {name}")
                    self._conn.execute(f"RELEASE {name}")
                raise
            self._depth -= 1
            self._conn.execute("COMMIT" if self._depth == 0 else f"RELEASE {name}")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def get_meta(self, key: str) -> str | None:
        found = self.row("SELECT value FROM meta WHERE key = ?", (key,))
        return None if found is None else str(found["value"])

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def reset(self) -> None:
        with self.transaction():
            for table in RESET_TABLES:
                self.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
