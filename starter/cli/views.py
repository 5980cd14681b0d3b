"""How each answer of ``kartu`` reads to a person: a document (``starter.output`` blocks) per
answer, drawn with ``rich`` on a terminal and as plain aligned text when piped
(``console.show``). ``--json`` prints the answer itself instead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starter.output import Block, Fields, Table, Text, cell, plain

Doc = list[Block]


def registration_started(started: Any) -> Doc:
    return [
        Fields(
            [
                ("registration", started.registration_id),
                ("workflow", started.workflow_id),
                ("webview", started.webview.url),
                ("expires at", started.webview.expires_at),
                ("next", f"open the webview; then: kartu registration {started.registration_id}"),
            ]
        )
    ]


def registration(state: Any) -> Doc:
    card = f"{state.brand or ''} {state.masked_card or ''}".strip()
    return [
        Fields(
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
    ]


def outcome(outcome: Any) -> Doc:
    doc: Doc = [
        Fields(
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
    ]
    if outcome.authentication_url:
        doc.append(
            Text(
                "next: send the customer to the 3DS page (in the sandbox: kartu sandbox 3ds "
                f"<url>), then: kartu status {outcome.payment_id} --wait"
            )
        )
    return doc


def action(payment_id: str, result: Any) -> Doc:
    return [
        Fields(
            [
                ("payment", payment_id),
                ("outcome", result.outcome),
                ("status", result.status),
                ("amount", result.amount),
                ("reason", result.reason),
            ]
        )
    ]


def _refund_pairs(state: Any) -> list[tuple[str, Any]]:
    return [
        ("refund of", state.payment_id),
        ("status", state.status),
        ("amount", state.amount),
        ("invoice", state.invoice_number),
        ("reason", state.reason),
        ("failure", state.failure),
        ("attempt", state.attempt if state.attempt > 1 else None),
        ("workflow", state.workflow_id),
    ]


def refund(state: Any) -> Doc:
    return [Fields(_refund_pairs(state))]


def unbind(state: Any) -> Doc:
    return [
        Fields(
            [
                ("status", state.status),
                ("customer", state.customer_id),
                ("failure", state.failure),
                ("attempt", state.attempt if state.attempt > 1 else None),
                ("workflow", state.workflow_id),
            ]
        )
    ]


def payment(state: Any, refund: Any = None, provider: Any = None) -> Doc:
    doc: Doc = [
        Fields(
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
    ]
    if state.history:
        rows = [plain(t) for t in state.history]
        doc.append(Table(rows, ["at", "from_status", "to_status", "reason"]))
    if state.ignored:
        rows = [plain(i) for i in state.ignored]
        doc.append(Table(rows, ["at", "name", "reason"], title="ignored:"))
    if refund is not None:
        doc.append(Fields(_refund_pairs(refund), title="refund:"))
    if provider is not None:
        doc += provider_view(state, provider)
    return doc


def provider_view(state: Any, view: Any) -> Doc:
    """Kartu's state and Ayoconnect's Get Payment Status side by side (each in its own words:
    Kartu's PAID is the provider's SUCCESS)."""
    head = f"Kartu beside Ayoconnect (looked up at {cell(view.checked_at)}, {view.lookup_id})"
    if view.payment is None:
        return [Text(f"{head}\nayoconnect: {view.outcome}: {view.reason or 'no answer'}")]
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
    return [Table(shown, ["field", "kartu", "ayoconnect"], title=head)]


def cards(cards: Any) -> Doc:
    """``kartu cards``: Ayoconnect's cards list with Kartu's registration ids (CustomerCards)."""
    if cards.provider == "found":
        head = f"Ayoconnect's cards of {cards.customer_id}, with Kartu's registrations"
    else:
        head = f"Ayoconnect's cards list: {cards.provider}: {cards.reason or 'no answer'}"
        head += f"\ncards registered through Kartu for {cards.customer_id}"
    if not cards.cards:
        return [Text(f"{head}\nno cards")]
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
    return [Table(rows, [*columns, "registration_id"], title=head)]


def payments(found: Sequence[Any]) -> Doc:
    if not found:
        return [Text("no payments found")]
    columns = ["payment_id", "flow", "status", "customer_id", "amount"]
    columns += ["authorization_expires_at", "started_at"]
    return [Table([plain(p) for p in found], columns)]


def mapping(values: Mapping[str, Any]) -> Doc:
    return [Fields(sorted(values.items()))]


def ledger(ledger: Mapping[str, Any]) -> Doc:
    """The sandbox's ledger, card tokens left out (``--json`` has everything)."""
    doc: Doc = [Text(f"sandbox clock: {ledger.get('now')}")]
    rows = [
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
    if rows:
        columns = ["transaction", "invoice", "operation", "status", "amount", "card"]
        doc.append(Table(rows, columns, title="payments:"))
    listed = ledger.get("cards") or []
    if listed:
        columns = ["customerId", "brand", "maskedCard", "status"]
        doc.append(Table(listed, columns, title="cards:"))
    doc.append(Text(f"callbacks: {len(ledger.get('callbacks') or [])}"))
    return doc


def page(result: Mapping[str, Any]) -> Doc:
    if result.get("redirected_to"):
        return [Text(f"submitted: the page sent the customer to {result['redirected_to']}")]
    return [Text(f"submitted: the page answered {result.get('status_code')}")]
