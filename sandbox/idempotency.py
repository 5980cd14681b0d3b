"""Idempotency by ``transactionId`` for every POST: the same body gets the stored first answer
(same status, same body), another body gets 409.

The comparison uses the parsed request in canonical form (the models' JSON, keys sorted), so
whitespace or key order never makes a retry look like a different request. Answers are stored
once the request was valid and the operation ran, refusals included (a decline replays as the
same decline); malformed requests and injected faults are not stored, as nothing was decided.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from ayoconnect.codes import ServiceCode

from .clock import db_time
from .db import Database
from .errors import ApiError, Reply, conflict


def request_hash(endpoint: str, request: BaseModel) -> str:
    canonical = json.dumps(
        {"endpoint": endpoint, "body": request.model_dump(mode="json", exclude_none=True)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def run(
        self,
        *,
        transaction_id: str,
        endpoint: str,
        service: ServiceCode,
        request: BaseModel,
        now: datetime,
        apply: Callable[[], Reply],
    ) -> Reply:
        digest = request_hash(endpoint, request)
        with self.db.transaction():
            stored = self.db.row(
                "SELECT request_hash, status_code, body FROM idempotency WHERE transaction_id = ?",
                (transaction_id,),
            )
            if stored is not None:
                if stored["request_hash"] != digest:
                    message = "transactionId was already used with a different request"
                    return conflict(service, message).reply(now, transaction_id)
                return Reply(int(stored["status_code"]), json.loads(stored["body"]))
            try:
                # A savepoint: a refusal raised midway leaves no half-applied operation behind.
                with self.db.transaction():
                    reply = apply()
            except ApiError as refused:
                reply = refused.reply(now, transaction_id)
            self.db.execute(
                "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                (
                    transaction_id,
                    endpoint,
                    digest,
                    reply.status,
                    json.dumps(reply.body),
                    db_time(now),
                ),
            )
            return reply
