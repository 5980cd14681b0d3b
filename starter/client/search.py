"""Finding payments: ``find_payments`` over Kartu's search attributes (Temporal visibility:
eventually consistent; one payment is read with ``payment_status``). A payment the Refund
workflow refunded still says PAID / CAPTURED on its own workflow: the searches look at the
refund workflows too (``refund_views``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from workflows import search_attributes as sa
from workflows.ids import payment_workflow_id
from workflows.models import PaymentFlow, PaymentStatus

from . import pages, refund_views
from .core import ClientCore, _unavailable
from .errors import InvalidRequest
from .models import PaymentSummary, _CustomerIdOnly
from .refund_views import REFUNDABLE
from .validation import _enum, _validated

PAYMENT_WORKFLOW_TYPES = ("DirectPayment", "AuthCapturePayment")
_EPOCH = datetime.min.replace(tzinfo=UTC)


class SearchMixin(ClientCore):
    async def find_payments(
        self,
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        expiring_before: datetime | None = None,
        flow: PaymentFlow | str | None = None,
        limit: int = 100,
    ) -> list[PaymentSummary]:
        """Payments by Kartu's search attributes, newest first (visibility: eventually
        consistent; read one payment with ``payment_status``)."""
        query = self.payments_query(
            status=status, customer_id=customer_id, expiring_before=expiring_before, flow=flow
        )
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000", "limit")
        wanted = None if status is None else _enum(PaymentStatus, status, "status")
        try:
            # A payment the Refund workflow refunded still says PAID / CAPTURED on its own
            # workflow: every page is checked against the refunds (one more search per page).
            found = await self._search_payments(query, limit, drop_refunded=wanted in REFUNDABLE)
            if wanted is PaymentStatus.REFUNDED:
                also = self.payments_query(
                    customer_id=customer_id, expiring_before=expiring_before, flow=flow
                )
                found = await self._refunded_by_refund_workflow(
                    found, limit, self.refunds_query(customer_id=customer_id), also
                )
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(f"search refused: {err.message}") from None
            raise _unavailable(err) from None
        return found

    async def find_payments_page(
        self,
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        expiring_before: datetime | None = None,
        flow: PaymentFlow | str | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> pages.PaymentPage:
        """``find_payments`` a page at a time: at most ``page_size`` payments, newest first, and
        the ``next_page_token`` to pass as ``page_token`` (None: the last page). A page may be
        short, even empty, with more to come (a PAID / CAPTURED search leaves out payments
        refunded since). REFUNDED lists the payments whose own workflow says so, then those the
        Refund workflow refunded."""
        query = self.payments_query(
            status=status, customer_id=customer_id, expiring_before=expiring_before, flow=flow
        )
        size = pages.page_size(page_size)
        wanted = None if status is None else _enum(PaymentStatus, status, "status")
        part, token = pages.decode_token(page_token, query, ("payments", "refunds"))
        try:
            if part == "payments":
                listed = self._client.list_workflows(query, page_size=size, next_page_token=token)
                await listed.fetch_next_page()
                found = [_summary(e) for e in listed.current_page or ()]
                found = await self._refunds_marked(found, wanted in REFUNDABLE)
                if listed.next_page_token is None and wanted is PaymentStatus.REFUNDED:
                    following = pages.encode_token(query, "refunds", None)
                    return pages.PaymentPage(payments=found, next_page_token=following)
            else:
                refunds_query = self.refunds_query(customer_id=customer_id)
                listed = self._client.list_workflows(
                    refunds_query, page_size=size, next_page_token=token
                )
                await listed.fetch_next_page()
                also = self.payments_query(
                    customer_id=customer_id, expiring_before=expiring_before, flow=flow
                )
                found = await self._refunded_payments(listed.current_page or (), also)
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                field = "page_token" if page_token else None
                raise InvalidRequest(f"search refused: {err.message}", field) from None
            raise _unavailable(err) from None
        following = listed.next_page_token
        return pages.PaymentPage(
            payments=found,
            next_page_token=pages.encode_token(query, part, following) if following else None,
        )

    async def _refunded_payments(
        self, refund_runs: Iterable[WorkflowExecution], payments_query: str
    ) -> list[PaymentSummary]:
        """The payments of these Refund workflows that match ``payments_query``, as REFUNDED,
        in the refunds' order; not those whose own workflow says REFUNDED (listed before)."""
        ids = [p for e in refund_runs if (p := refund_views.refunded_payment_id(e.id))]
        by_id: dict[str, PaymentSummary] = {}
        for start in range(0, len(ids), 100):
            workflow_ids = [payment_workflow_id(p) for p in ids[start : start + 100]]
            query = refund_views.with_ids(payments_query, workflow_ids)
            async for e in self._client.list_workflows(query, page_size=len(workflow_ids)):
                summary = _summary(e)
                if summary.status != PaymentStatus.REFUNDED.value:
                    by_id[summary.payment_id] = summary.model_copy(
                        update={"status": PaymentStatus.REFUNDED.value}
                    )
        return [by_id[p] for p in ids if p in by_id]

    async def _search_payments(
        self, query: str, limit: int, *, drop_refunded: bool
    ) -> list[PaymentSummary]:
        out: list[PaymentSummary] = []
        page: list[PaymentSummary] = []
        size = min(max(limit, 100), 1000)
        async for execution in self._client.list_workflows(query, page_size=size):
            page.append(_summary(execution))
            if len(page) == size:
                out += await self._refunds_marked(page, drop_refunded)
                page = []
                if len(out) >= limit:
                    break
        if page:
            out += await self._refunds_marked(page, drop_refunded)
        return out[:limit]

    async def _refunds_marked(self, page: list[PaymentSummary], drop: bool) -> list[PaymentSummary]:
        candidates = refund_views.payment_ids_of(page)
        if not candidates:
            return page
        query = refund_views.refunded_among_query(candidates)
        refunded = {
            refund_views.refunded_payment_id(e.id)
            async for e in self._client.list_workflows(query, page_size=len(candidates))
        }
        return refund_views.marked(page, {p for p in refunded if p}, drop)

    async def _refunded_by_refund_workflow(
        self, found: list[PaymentSummary], limit: int, refunds_query: str, payments_query: str
    ) -> list[PaymentSummary]:
        """``found`` (payments whose own workflow says REFUNDED) and the payments a Refund
        workflow refunded that match ``payments_query`` (the same criteria but the status,
        which their own workflow still gives as PAID / CAPTURED), newest first."""
        known = {s.payment_id for s in found}
        refunded: list[str] = []
        async for e in self._client.list_workflows(refunds_query, page_size=limit):
            payment_id = refund_views.refunded_payment_id(e.id)
            if payment_id and payment_id not in known:
                refunded.append(payment_id)
            if len(refunded) >= limit:
                break
        # Flow, amount and expiry come from the payment workflows themselves.
        out = list(found)
        for start in range(0, len(refunded), 100):
            ids = [payment_workflow_id(p) for p in refunded[start : start + 100]]
            async for e in self._client.list_workflows(refund_views.with_ids(payments_query, ids)):
                out.append(_summary(e).model_copy(update={"status": PaymentStatus.REFUNDED.value}))
        out.sort(key=lambda s: s.started_at or _EPOCH, reverse=True)
        return out[:limit]

    @staticmethod
    def payments_query(
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        expiring_before: datetime | None = None,
        flow: PaymentFlow | str | None = None,
    ) -> str:
        """The visibility query ``find_payments`` runs (also usable in the Temporal UI); for
        REFUNDED it also runs ``refunds_query``. Every value is validated against its type
        first, so nothing can be injected."""
        types = ", ".join(f"'{t}'" for t in PAYMENT_WORKFLOW_TYPES)
        clauses = [f"WorkflowType IN ({types})"]
        if status is not None:
            clauses.append(f"{sa.PAYMENT_STATUS.name} = '{_enum(PaymentStatus, status, 'status')}'")
        if customer_id is not None:
            checked = _validated(_CustomerIdOnly, {"customer_id": customer_id}).customer_id
            clauses.append(f"{sa.CUSTOMER_ID.name} = '{checked}'")
        if expiring_before is not None:
            if not isinstance(expiring_before, datetime) or expiring_before.tzinfo is None:
                raise InvalidRequest(
                    "expiring_before must be a datetime with a time zone", "expiring_before"
                )
            try:
                # isoformat keeps 4-digit years (strftime writes year 824 as "824").
                moment = expiring_before.astimezone(UTC).isoformat(timespec="microseconds")
            except (OverflowError, ValueError):
                raise InvalidRequest(
                    "expiring_before is outside the supported dates", "expiring_before"
                ) from None
            moment = moment.replace("+00:00", "Z")
            clauses.append(f"{sa.AUTH_EXPIRES_AT.name} < '{moment}'")
        if flow is not None:
            clauses.append(f"{sa.FLOW.name} = '{_enum(PaymentFlow, flow, 'flow')}'")
        return " AND ".join(clauses)

    @staticmethod
    def refunds_query(*, customer_id: str | None = None) -> str:
        """The visibility query of the Refund workflows that ended REFUNDED (``find_payments``
        with status REFUNDED adds their payments to the ``payments_query`` hits)."""
        if customer_id is not None:
            customer_id = _validated(_CustomerIdOnly, {"customer_id": customer_id}).customer_id
        return refund_views.refunds_query(customer_id)


def _summary(execution: WorkflowExecution) -> PaymentSummary:
    attrs = execution.typed_search_attributes
    workflow_id = execution.id
    return PaymentSummary(
        payment_id=workflow_id.removeprefix("payment-"),
        workflow_id=workflow_id,
        workflow_type=execution.workflow_type,
        running=execution.status == WorkflowExecutionStatus.RUNNING,
        flow=attrs.get(sa.FLOW),
        status=attrs.get(sa.PAYMENT_STATUS),
        customer_id=attrs.get(sa.CUSTOMER_ID),
        amount=attrs.get(sa.AMOUNT),
        invoice_number=attrs.get(sa.INVOICE_NUMBER),
        authorization_expires_at=attrs.get(sa.AUTH_EXPIRES_AT),
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )
