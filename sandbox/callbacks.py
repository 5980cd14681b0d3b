"""Signed callbacks to the merchant, with Ayoconnect's retry schedule and injected mischief.

Each callback is a ledger row; each delivery attempt is another (time, URL, HTTP status or
error, fault), so a test can see exactly what the merchant was sent and when. Retries follow the
contract (1, 2 and 5 minutes) scaled by ``time_factor``. Callbacks still pending when the sandbox
stops are resumed when it starts again on the same file.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from ayoconnect.models import BindingCallback, PaymentCallback
from ayoconnect.security import callback_signature
from ayoconnect.settings import AyoconnectSettings
from ayoconnect.tls import tls_context

from .clock import SandboxClock, db_time, from_db, wire_time
from .db import Database
from .faults import CallbackPlan, FaultInjector
from .settings import SandboxSettings

log = logging.getLogger(__name__)

# A reordered callback waits for the next one to go out; if none comes, it goes out after this.
REORDER_HOLD_SECONDS = 5.0


class CallbackDispatcher:
    def __init__(
        self,
        db: Database,
        clock: SandboxClock,
        faults: FaultInjector,
        settings: SandboxSettings,
        ayoconnect: AyoconnectSettings,
    ) -> None:
        self.db = db
        self.clock = clock
        self.faults = faults
        self.settings = settings
        self.ayoconnect = ayoconnect
        # Where callbacks go; None records them without sending. PUT /_sandbox/callback-url
        # changes it at run time, a reset restores the setting.
        self.url: str | None = settings.callback_url
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: list[int] = []

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._client()
        for row in self.db.rows("SELECT id FROM callbacks WHERE state = 'pending' ORDER BY id"):
            self._spawn(self._deliver(int(row["id"])))

    async def stop(self) -> None:
        await self.cancel_all()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def reset(self) -> None:
        """Forget in-flight deliveries and go back to the configured URL."""
        await self.cancel_all()
        self.url = self.settings.callback_url

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._held.clear()

    # --- emitting --------------------------------------------------------------------------

    def emit(self, callback: BindingCallback | PaymentCallback, reference: str) -> int:
        """Record the callback and schedule its delivery (after the current transaction)."""
        body = callback.model_dump(mode="json", exclude_none=True)
        url = self.url
        now = db_time(self.clock.now())
        plan = self.faults.plan_callback() if url else CallbackPlan()
        state = "recorded" if url is None else ("dropped" if plan.drop else "pending")
        cursor = self.db.execute(
            "INSERT INTO callbacks (type, reference, url, body, state, attempts, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (callback.type, reference, url, json.dumps(body), state, now, now),
        )
        callback_id = int(cursor.lastrowid or 0)
        if plan.drop:
            self._record_attempt(callback_id, 0, url, None, None, "drop")
        if state != "pending":
            return callback_id
        if plan.reorder:
            self._held.append(callback_id)
            self._spawn(self._release_held_later(callback_id))
            return callback_id
        self._spawn(self._deliver(callback_id, plan.delay_ms / 1000, release_held=True))
        if plan.duplicate:
            self._spawn(self._send_duplicate(callback_id, plan.delay_ms / 1000))
        return callback_id

    # --- delivery --------------------------------------------------------------------------

    async def _deliver(
        self, callback_id: int, first_delay: float = 0.0, *, release_held: bool = False
    ) -> None:
        if first_delay:
            await asyncio.sleep(first_delay)
        delays = [
            d * self.settings.time_factor for d in self.settings.callback_retry_delays_seconds
        ]
        while True:
            row = self.db.row("SELECT * FROM callbacks WHERE id = ?", (callback_id,))
            if row is None or row["state"] != "pending":
                return
            attempt = int(row["attempts"]) + 1
            delivered = await self._attempt(row, attempt, fault=None)
            if release_held:
                release_held = False
                self._release_held()
            if delivered:
                self._finish(callback_id, attempt, "delivered")
                return
            if attempt > len(delays):
                self._finish(callback_id, attempt, "failed")
                return
            self._finish(callback_id, attempt, "pending")
            await asyncio.sleep(delays[attempt - 1])

    async def _send_duplicate(self, callback_id: int, first_delay: float) -> None:
        if first_delay:
            await asyncio.sleep(first_delay)
        row = self.db.row("SELECT * FROM callbacks WHERE id = ?", (callback_id,))
        if row is not None:
            await self._attempt(row, 0, fault="duplicate")

    async def _attempt(self, row: Any, attempt: int, fault: str | None) -> bool:
        url = row["url"]
        try:
            signature = await asyncio.to_thread(
                callback_signature,
                self.ayoconnect.client_secret.get_secret_value(),
                self.ayoconnect.merchant_code,
                self.settings.callback_signature_rounds,
            )
            response = await self._client().post(
                url,
                content=row["body"].encode(),
                headers={
                    "Content-Type": "application/json",
                    self.ayoconnect.callback_auth_header: signature,
                },
            )
        except httpx.HTTPError as exc:
            self._record_attempt(row["id"], attempt, url, None, type(exc).__name__, fault)
            return False
        self._record_attempt(row["id"], attempt, url, response.status_code, None, fault)
        return response.is_success

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for callback_id in held:
            self._spawn(self._deliver(callback_id))

    async def _release_held_later(self, callback_id: int) -> None:
        await asyncio.sleep(REORDER_HOLD_SECONDS)
        if callback_id in self._held:
            self._held.remove(callback_id)
            await self._deliver(callback_id)

    # --- records ---------------------------------------------------------------------------

    def _finish(self, callback_id: int, attempts: int, state: str) -> None:
        self.db.execute(
            "UPDATE callbacks SET state = ?, attempts = ?, updated_at = ? WHERE id = ?",
            (state, attempts, db_time(self.clock.now()), callback_id),
        )

    def _record_attempt(
        self,
        callback_id: int,
        attempt: int,
        url: str | None,
        status: int | None,
        error: str | None,
        fault: str | None,
    ) -> None:
        self.db.execute(
            "INSERT INTO callback_attempts (callback_id, attempt, url, http_status, error, fault, "
            "at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (callback_id, attempt, url, status, error, fault, db_time(self.clock.now())),
        )

    def snapshot(self) -> list[dict[str, Any]]:
        attempts: dict[int, list[dict[str, Any]]] = {}
        for row in self.db.rows("SELECT * FROM callback_attempts ORDER BY id"):
            attempts.setdefault(int(row["callback_id"]), []).append(
                {
                    "attempt": row["attempt"],
                    "url": row["url"],
                    "httpStatus": row["http_status"],
                    "error": row["error"],
                    "fault": row["fault"],
                    "time": wire_time(from_db(row["at"])),
                }
            )
        return [
            {
                "id": row["id"],
                "type": row["type"],
                "reference": row["reference"],
                "url": row["url"],
                "state": row["state"],
                "attempts": row["attempts"],
                "body": json.loads(row["body"]),
                "deliveries": attempts.get(int(row["id"]), []),
                "createdAt": wire_time(from_db(row["created_at"])),
            }
            for row in self.db.rows("SELECT * FROM callbacks ORDER BY id")
        ]

    # --- plumbing --------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            timeout = self.settings.callback_timeout_seconds
            self._http = httpx.AsyncClient(timeout=timeout, verify=tls_context())
        return self._http

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            # No loop (a tool using the app's objects directly): the row stays pending and is
            # delivered when a server starts on this ledger.
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("callback delivery failed", exc_info=task.exception())
