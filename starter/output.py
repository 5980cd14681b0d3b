"""How the ``kartu`` CLI prints: JSON for scripts (``--json``), plain aligned tables for people.

JSON is built from the same pydantic models the API returns (``model_dump(mode="json")``), so
amounts stay decimal strings and times ISO 8601; nothing here knows a payment's fields.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

from pydantic import BaseModel


def plain(value: Any) -> Any:
    """Models, enums, decimals, times and containers as JSON-ready values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def print_json(value: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(plain(value), indent=2, ensure_ascii=False) + "\n")
    stream.flush()


def print_json_line(value: Any, out: TextIO | None = None) -> None:
    """One compact object per line: events a script reads as they come (``kartu up --json``)."""
    stream = out or sys.stdout
    stream.write(json.dumps(plain(value), ensure_ascii=False, separators=(",", ":")) + "\n")
    stream.flush()


def cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows under upper-case headers, columns padded to their widest cell."""
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    headers = [c.upper().replace("_", " ") for c in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [_line(headers, widths)] + [_line(r, widths) for r in cells]
    return "\n".join(lines)


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """``name: value`` lines, names aligned; None values are left out."""
    shown = [(k, cell(v)) for k, v in pairs if v is not None]
    if not shown:
        return ""
    width = max(len(k) for k, _ in shown)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in shown)


def emit(text: str, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(text.rstrip("\n") + "\n")
    stream.flush()


# --- how each answer reads to a person --------------------------------------------------------


def registration_started_text(started: Any) -> str:
    return fields(
        [
            ("registration", started.registration_id),
            ("workflow", started.workflow_id),
            ("webview", started.webview.url),
            ("expires at", started.webview.expires_at),
            ("next", f"open the webview; then: kartu registration {started.registration_id}"),
        ]
    )


def registration_text(state: Any) -> str:
    card = f"{state.brand or ''} {state.masked_card or ''}".strip()
    return fields(
        [
            ("registration", state.registration_id),
            ("status", state.status),
            ("customer", state.customer_id),
            ("card token", state.card_token),
            ("card", card or None),
            ("webview", state.webview.url if state.webview else None),
            ("reason", state.reason),
            ("workflow", state.workflow_id),
        ]
    )


def outcome_text(outcome: Any) -> str:
    text = fields(
        [
            ("payment", outcome.payment_id),
            ("status", outcome.status),
            ("invoice", outcome.invoice_number),
            ("3DS page", outcome.authentication_url),
            ("decline code", outcome.decline_code),
            ("gateway code", outcome.gateway_code),
            ("reason", outcome.reason),
            ("workflow", outcome.workflow_id),
        ]
    )
    if outcome.authentication_url:
        text += (
            "\n\nnext: send the customer to the 3DS page (in the sandbox: kartu sandbox 3ds "
            f"<url>), then: kartu status {outcome.payment_id} --wait"
        )
    return text


def action_text(payment_id: str, result: Any) -> str:
    return fields(
        [
            ("payment", payment_id),
            ("outcome", result.outcome),
            ("status", result.status),
            ("amount", result.amount),
            ("reason", result.reason),
        ]
    )


def refund_text(state: Any) -> str:
    return fields(
        [
            ("refund of", state.payment_id),
            ("status", state.status),
            ("amount", state.amount),
            ("invoice", state.invoice_number),
            ("reason", state.reason),
            ("failure", state.failure),
            ("attempt", state.attempt if state.attempt > 1 else None),
            ("workflow", state.workflow_id),
        ]
    )


def unbind_text(state: Any) -> str:
    return fields(
        [
            ("status", state.status),
            ("customer", state.customer_id),
            ("failure", state.failure),
            ("attempt", state.attempt if state.attempt > 1 else None),
            ("workflow", state.workflow_id),
        ]
    )


def payment_text(state: Any, refund: Any = None, provider: Any = None) -> str:
    text = fields(
        [
            ("payment", state.payment_id),
            ("status", state.status),
            ("flow", state.flow),
            ("customer", state.customer_id),
            ("amount", state.amount),
            ("authorized", state.authorized_amount),
            ("captured", state.captured_amount),
            ("refunded", state.refunded_amount),
            ("refunded at", state.refunded_at),
            ("refund reason", state.refund_reason),
            ("invoice", state.invoice_number),
            ("auth expires", state.authorization_expires_at),
            ("3DS page", state.authentication_url),
            ("decline code", state.decline_code),
            ("reason", state.decline_reason or state.attention_reason),
            ("workflow", state.workflow_id),
        ]
    )
    if state.history:
        rows = [plain(t) for t in state.history]
        text += "\n\n" + table(rows, ["at", "from_status", "to_status", "reason"])
    if state.ignored:
        rows = [plain(i) for i in state.ignored]
        text += "\n\nignored:\n" + table(rows, ["at", "name", "reason"])
    if refund is not None:
        text += "\n\nrefund:\n" + refund_text(refund)
    if provider is not None:
        text += "\n\n" + provider_text(state, provider)
    return text


def provider_text(state: Any, view: Any) -> str:
    """Kartu's state and Ayoconnect's Get Payment Status side by side (each in its own words:
    Kartu's PAID is the provider's SUCCESS)."""
    head = f"Kartu beside Ayoconnect (looked up at {cell(view.checked_at)}, {view.lookup_id})"
    if view.payment is None:
        return f"{head}\nayoconnect: {view.outcome}: {view.reason or 'no answer'}"
    p = view.payment
    last = state.history[-1].at if state.history else None
    rows = [
        ("status", state.status, p.status),
        ("amount", state.amount, p.amount),
        ("authorized", state.authorized_amount, p.authorizedAmount),
        ("captured", state.captured_amount, p.capturedAmount),
        ("refunded", state.refunded_amount, p.refundedAmount),
        ("invoice", state.invoice_number, p.invoiceNumber),
        ("auth expires", state.authorization_expires_at, p.authorizationExpiresAt),
        ("updated", last, p.updatedAt),
    ]
    shown = [{"field": f, "kartu": k, "ayoconnect": a} for f, k, a in rows]
    return head + "\n" + table(shown, ["field", "kartu", "ayoconnect"])


def cards_table(cards: Any) -> str:
    """``kartu cards``: Ayoconnect's cards list with Kartu's registration ids (CustomerCards)."""
    if cards.provider == "found":
        head = f"Ayoconnect's cards of {cards.customer_id}, with Kartu's registrations"
    else:
        head = f"Ayoconnect's cards list: {cards.provider}: {cards.reason or 'no answer'}"
        head += f"\ncards registered through Kartu for {cards.customer_id}"
    if not cards.cards:
        return f"{head}\nno cards"
    rows = []
    for c in cards.cards:
        row = plain(c)
        if c.expiry_month and c.expiry_year:
            row["expiry"] = f"{c.expiry_month}/{c.expiry_year}"
        # Each side's word on the card: a card bound or disabled elsewhere differs here.
        row["ayoconnect"] = c.status or ("not listed" if cards.provider == "found" else None)
        row["kartu"] = c.kartu_status
        rows.append(row)
    columns = ["card_token", "brand", "masked_card", "expiry", "ayoconnect", "kartu"]
    return head + "\n" + table(rows, [*columns, "registration_id"])


def payments_table(found: Sequence[Any]) -> str:
    if not found:
        return "no payments found"
    columns = ["payment_id", "flow", "status", "customer_id", "amount"]
    columns += ["authorization_expires_at", "started_at"]
    return table([plain(p) for p in found], columns)


def ledger_text(ledger: Mapping[str, Any]) -> str:
    """The sandbox's ledger, card tokens left out (``--json`` has everything)."""
    parts = [f"sandbox clock: {ledger.get('now')}"]
    payments = [
        {
            "transaction": p.get("originalTransactionId"),
            "invoice": p.get("invoiceNumber"),
            "operation": p.get("operation"),
            "status": p.get("status"),
            "amount": (p.get("amounts") or {}).get("amount"),
            "card": p.get("maskedCard"),
        }
        for p in ledger.get("payments") or []
    ]
    if payments:
        columns = ["transaction", "invoice", "operation", "status", "amount", "card"]
        parts.append("payments:\n" + table(payments, columns))
    cards = ledger.get("cards") or []
    if cards:
        parts.append("cards:\n" + table(cards, ["customerId", "brand", "maskedCard", "status"]))
    parts.append(f"callbacks: {len(ledger.get('callbacks') or [])}")
    return "\n\n".join(parts)


def page_text(result: Mapping[str, Any]) -> str:
    if result.get("redirected_to"):
        return f"submitted: the page sent the customer to {result['redirected_to']}"
    return f"submitted: the page answered {result.get('status_code')}"
