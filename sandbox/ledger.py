"""The money side of the sandbox: customers, cards, payments and every operation on them.

Amounts are ``Decimal`` in code and two-place strings in SQLite, never floats. Cards keep only
what the contract may show (masked number, brand, expiry) plus the test-card outcome class.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ayoconnect.models import CardStatus, Operation, PaymentStatus

from .clock import db_time, from_db, wire_time
from .db import Database
from .test_cards import Outcome


def new_invoice_number(now: datetime) -> str:
    return f"INV{now:%y%m%d}{secrets.token_hex(8).upper()}"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _time(value: str | None) -> datetime | None:
    return None if value is None else from_db(value)


@dataclass(frozen=True)
class CardRecord:
    card_token: str
    customer_id: str
    masked_card: str
    brand: str
    expiry_month: str
    expiry_year: str
    outcome: Outcome
    status: CardStatus
    reference_number: str
    created_at: datetime


@dataclass(frozen=True)
class Payment:
    invoice_number: str
    original_transaction_id: str
    customer_id: str
    operation: Operation
    status: PaymentStatus
    amount: Decimal
    currency: str
    order_id: str
    masked_card: str
    brand: str
    outcome: Outcome
    created_at: datetime
    updated_at: datetime
    card_token: str | None = None
    redirect_url: str | None = None
    authorized_amount: Decimal | None = None
    captured_amount: Decimal | None = None
    refunded_amount: Decimal | None = None
    authorization_expires_at: datetime | None = None


def _card(row: Any) -> CardRecord:
    return CardRecord(
        card_token=row["card_token"],
        customer_id=row["customer_id"],
        masked_card=row["masked_card"],
        brand=row["brand"],
        expiry_month=row["expiry_month"],
        expiry_year=row["expiry_year"],
        outcome=Outcome(row["outcome"]),
        status=CardStatus(row["status"]),
        reference_number=row["reference_number"],
        created_at=from_db(row["created_at"]),
    )


def _payment(row: Any) -> Payment:
    return Payment(
        invoice_number=row["invoice_number"],
        original_transaction_id=row["original_transaction_id"],
        customer_id=row["customer_id"],
        operation=Operation(row["operation"]),
        status=PaymentStatus(row["status"]),
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        order_id=row["order_id"],
        masked_card=row["masked_card"],
        brand=row["brand"],
        outcome=Outcome(row["outcome"]),
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
        card_token=row["card_token"],
        redirect_url=row["redirect_url"],
        authorized_amount=_decimal(row["authorized_amount"]),
        captured_amount=_decimal(row["captured_amount"]),
        refunded_amount=_decimal(row["refunded_amount"]),
        authorization_expires_at=_time(row["authorization_expires_at"]),
    )


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- customers and cards ---------------------------------------------------------------

    def has_customer(self, customer_id: str) -> bool:
        return (
            self.db.row("SELECT 1 FROM customers WHERE customer_id = ?", (customer_id,)) is not None
        )

    def add_customer(
        self, customer_id: str, name: str, email: str, phone_number: str, now: datetime
    ) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO customers VALUES (?, ?, ?, ?, ?)",
            (customer_id, name, email, phone_number, db_time(now)),
        )

    def add_card(self, card: CardRecord) -> None:
        at = db_time(card.created_at)
        self.db.execute(
            "INSERT INTO cards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                card.card_token,
                card.customer_id,
                card.masked_card,
                card.brand,
                card.expiry_month,
                card.expiry_year,
                card.outcome.value,
                card.status.value,
                card.reference_number,
                at,
                at,
            ),
        )

    def card(self, card_token: str) -> CardRecord | None:
        row = self.db.row("SELECT * FROM cards WHERE card_token = ?", (card_token,))
        return None if row is None else _card(row)

    def cards_of(self, customer_id: str) -> list[CardRecord]:
        rows = self.db.rows(
            "SELECT * FROM cards WHERE customer_id = ? ORDER BY created_at, card_token",
            (customer_id,),
        )
        return [_card(row) for row in rows]

    def set_card_status(self, card_token: str, status: CardStatus, now: datetime) -> None:
        self.db.execute(
            "UPDATE cards SET status = ?, updated_at = ? WHERE card_token = ?",
            (status.value, db_time(now), card_token),
        )

    # --- payments --------------------------------------------------------------------------

    def add_payment(self, p: Payment) -> None:
        self.db.execute(
            "INSERT INTO payments (invoice_number, original_transaction_id, customer_id, "
            "operation, status, amount, currency, order_id, authorized_amount, captured_amount, "
            "refunded_amount, card_token, masked_card, brand, outcome, redirect_url, "
            "authorization_expires_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                p.invoice_number,
                p.original_transaction_id,
                p.customer_id,
                p.operation.value,
                p.status.value,
                _money(p.amount),
                p.currency,
                p.order_id,
                _money(p.authorized_amount),
                _money(p.captured_amount),
                _money(p.refunded_amount),
                p.card_token,
                p.masked_card,
                p.brand,
                p.outcome.value,
                p.redirect_url,
                None if p.authorization_expires_at is None else db_time(p.authorization_expires_at),
                db_time(p.created_at),
                db_time(p.updated_at),
            ),
        )

    def save_payment(self, p: Payment, now: datetime) -> Payment:
        """Write the payment's mutable fields (status, amounts, window) back."""
        saved = replace(p, updated_at=now)
        self.db.execute(
            "UPDATE payments SET status = ?, authorized_amount = ?, captured_amount = ?, "
            "refunded_amount = ?, authorization_expires_at = ?, updated_at = ? "
            "WHERE invoice_number = ?",
            (
                saved.status.value,
                _money(saved.authorized_amount),
                _money(saved.captured_amount),
                _money(saved.refunded_amount),
                None
                if saved.authorization_expires_at is None
                else db_time(saved.authorization_expires_at),
                db_time(now),
                saved.invoice_number,
            ),
        )
        return saved

    def payment(self, invoice_number: str) -> Payment | None:
        row = self.db.row("SELECT * FROM payments WHERE invoice_number = ?", (invoice_number,))
        return None if row is None else _payment(row)

    def payment_by_transaction(self, transaction_id: str) -> Payment | None:
        """The payment a transactionId started or touched (capture, void, refund)."""
        row = self.db.row(
            "SELECT * FROM payments WHERE original_transaction_id = ? OR invoice_number = "
            "(SELECT invoice_number FROM operations WHERE transaction_id = ? LIMIT 1)",
            (transaction_id, transaction_id),
        )
        return None if row is None else _payment(row)

    def authorizations_due(self, now: datetime) -> list[Payment]:
        rows = self.db.rows(
            "SELECT * FROM payments WHERE status = ? AND authorization_expires_at <= ?",
            (PaymentStatus.AUTHORIZED.value, db_time(now)),
        )
        return [_payment(row) for row in rows]

    def record_operation(
        self,
        payment: Payment,
        operation: str,
        *,
        now: datetime,
        response_code: str,
        amount: Decimal | None,
        transaction_id: str | None = None,
        correlation_id: str | None = None,
        note: str | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO operations (invoice_number, operation, transaction_id, amount, status, "
            "response_code, correlation_id, note, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                payment.invoice_number,
                operation,
                transaction_id,
                _money(amount),
                payment.status.value,
                response_code,
                correlation_id,
                note,
                db_time(now),
            ),
        )

    # --- the ledger as JSON (GET /_sandbox/ledger) ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        operations: dict[str, list[dict[str, Any]]] = {}
        for row in self.db.rows("SELECT * FROM operations ORDER BY id"):
            operations.setdefault(row["invoice_number"], []).append(
                {
                    "operation": row["operation"],
                    "transactionId": row["transaction_id"],
                    "amount": row["amount"],
                    "status": row["status"],
                    "responseCode": row["response_code"],
                    "correlationId": row["correlation_id"],
                    "note": row["note"],
                    "time": wire_time(from_db(row["at"])),
                }
            )
        payments = [
            _payment_json(_payment(row), operations.get(row["invoice_number"], []))
            for row in self.db.rows("SELECT * FROM payments ORDER BY created_at, invoice_number")
        ]
        cards = [
            _card_json(_card(row))
            for row in self.db.rows("SELECT * FROM cards ORDER BY created_at, card_token")
        ]
        customers = [
            {"customerId": row["customer_id"], "createdAt": wire_time(from_db(row["created_at"]))}
            for row in self.db.rows("SELECT * FROM customers ORDER BY created_at")
        ]
        return {"payments": payments, "cards": cards, "customers": customers}


def _when(value: datetime | None) -> str | None:
    return None if value is None else wire_time(value)


def _payment_json(p: Payment, operations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "invoiceNumber": p.invoice_number,
        "originalTransactionId": p.original_transaction_id,
        "customerId": p.customer_id,
        "operation": p.operation.value,
        "status": p.status.value,
        "state": p.status.value,  # alias: the payment state machine's current state
        "amounts": {
            "amount": _money(p.amount),
            "authorized": _money(p.authorized_amount),
            "captured": _money(p.captured_amount),
            "refunded": _money(p.refunded_amount),
        },
        "currency": p.currency,
        "orderId": p.order_id,
        "cardToken": p.card_token,
        "maskedCard": p.masked_card,
        "brand": p.brand,
        "authorizationExpiresAt": _when(p.authorization_expires_at),
        "createdAt": wire_time(p.created_at),
        "updatedAt": wire_time(p.updated_at),
        "operations": operations,
    }


def _card_json(c: CardRecord) -> dict[str, Any]:
    return {
        "cardToken": c.card_token,
        "customerId": c.customer_id,
        "maskedCard": c.masked_card,
        "brand": c.brand,
        "expiryMonth": c.expiry_month,
        "expiryYear": c.expiry_year,
        "outcome": c.outcome.value,
        "status": c.status.value,
        "referenceNumber": c.reference_number,
        "createdAt": wire_time(c.created_at),
    }
