"""Card registration: webview → binding callback (or cards list) → REGISTERED | FAILED | EXPIRED.

The ``webview`` update returns the webview URL as soon as it exists (update-with-start early
return). The binding callback is awaited for the webview session (``expiresAt``) plus a margin
(10 minutes by default: Ayoconnect retries a callback after 1, 2 and 5 minutes, so a retried
one still finds the workflow open and PENDING).
There is no binding status API, so the callback's content is the result, once its transactionId
is checked; when none comes and the customer id is known, the cards list is compared with the
one taken before the webview opened: a new ACTIVE card is the registered one.
Workflow id ``registration-<registrationId>``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from . import ids, journal
from . import search_attributes as sa
from .provider import Provider, ProviderError
from .provider_time import aware

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import BindingCallback, Card, CardStatus, GenerateWebviewRequest

    from .models import RegistrationInput, RegistrationState, RegistrationStatus, WebviewInfo

REGISTRATION_FLOW = "REGISTRATION"


@workflow.defn(name="CardRegistration")
class CardRegistrationWorkflow:
    @workflow.init
    def __init__(self, registration: RegistrationInput) -> None:
        info = workflow.info()
        self.input = registration
        self.state = RegistrationState(
            registration_id=registration.registration_id,
            workflow_id=info.workflow_id,
            customer_id=registration.customer.customerId,
        )
        self.provider = Provider(
            key=registration.registration_id,
            customer_id=registration.customer.customerId,
            correlation_id=ids.correlation_id(info.workflow_id),
        )
        self.transaction_id = self.provider.tid(ids.Step.REGISTER)
        self.callback: BindingCallback | None = None

    @workflow.run
    async def run(self, registration: RegistrationInput) -> RegistrationState:
        self._upsert_search_attributes()
        known_cards = await self._cards_before()
        if await self._open_webview():
            await self._wait_for_binding()
            if self.callback is not None:
                self._apply_callback(self.callback)
            elif self.state.customer_id is not None:
                await self._find_new_card(known_cards)
            if self.state.status is RegistrationStatus.PENDING:
                self._finish(
                    RegistrationStatus.EXPIRED, "no binding result before the webview expired"
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    # --- steps ------------------------------------------------------------------------------

    async def _open_webview(self) -> bool:
        request = GenerateWebviewRequest(
            transactionId=self.transaction_id,
            customer=self.input.customer,
            redirectUrl=self.input.redirect_url,
            failedRedirectUrl=self.input.failed_redirect_url,
        )
        try:
            response = await self.provider.generate_webview(request)
        except ProviderError as err:
            self.state.response_code = err.failure.response_code
            self._finish(RegistrationStatus.FAILED, f"webview not generated: {err}")
            return False
        self.state.webview = WebviewInfo(
            url=response.webview.url,
            expires_at=aware(response.webview.expiresAt),
            reference_number=response.referenceNumber,
        )
        return True

    async def _wait_for_binding(self) -> None:
        assert self.state.webview is not None
        until = self.state.webview.expires_at + self.input.callback_margin
        remaining = until - workflow.now()
        try:
            await workflow.wait_condition(
                lambda: self.callback is not None,
                timeout=max(remaining, timedelta(seconds=1)),
                timeout_summary="webview session",
            )
        except TimeoutError:
            pass

    async def _cards_before(self) -> set[str] | None:
        if self.state.customer_id is None:
            return None
        try:
            return {c.cardToken for c in (await self.provider.list_cards()).cards}
        except ProviderError as err:
            workflow.logger.warning("cards list before webview failed: %s", err)
            return None

    async def _find_new_card(self, known: set[str] | None) -> None:
        try:
            cards = (await self.provider.list_cards()).cards
        except ProviderError as err:
            workflow.logger.warning("cards list look-up failed: %s", err)
            return
        new = [
            c
            for c in cards
            if c.status is CardStatus.ACTIVE and c.cardToken not in (known or set())
        ]
        if known is not None and len(new) == 1:
            self._register(new[0], "no callback; new card found in the cards list")

    def _apply_callback(self, callback: BindingCallback) -> None:
        self.state.response_code = callback.responseCode
        if callback.status == "ACTIVE" and callback.cardToken and callback.customerId:
            self.state.customer_id = callback.customerId
            self.state.card_token = callback.cardToken
            self.state.masked_card = callback.maskedCard
            self.state.brand = callback.brand
            self._finish(RegistrationStatus.REGISTERED, "binding callback: card ACTIVE")
        else:
            self._finish(RegistrationStatus.FAILED, f"binding failed ({callback.responseCode})")

    def _register(self, card: Card, reason: str) -> None:
        self.state.card_token = card.cardToken
        self.state.masked_card = card.maskedCard
        self.state.brand = card.brand
        self._finish(RegistrationStatus.REGISTERED, reason)

    def _finish(self, status: RegistrationStatus, reason: str) -> None:
        if status is not RegistrationStatus.REGISTERED:
            self.state.reason = reason
        journal.transition(self.state, status, reason)
        self._upsert_search_attributes()

    def _upsert_search_attributes(self) -> None:
        # Only the flow and Ayoconnect's customer id: no name, e-mail, phone or card token.
        workflow.upsert_search_attributes(
            sa.updates(flow=REGISTRATION_FLOW, customer_id=self.state.customer_id)
        )

    # --- handlers ---------------------------------------------------------------------------

    @workflow.update(name="webview")
    async def webview(self) -> WebviewInfo:
        await workflow.wait_condition(
            lambda: (
                self.state.webview is not None
                or self.state.status is not RegistrationStatus.PENDING
            )
        )
        if self.state.webview is None:
            raise ApplicationError(
                self.state.reason or "webview not generated", type="WebviewFailed"
            )
        return self.state.webview

    @workflow.signal(name="binding_callback")
    def binding_callback(self, callback: BindingCallback) -> None:
        if callback.transactionId != self.transaction_id:
            journal.ignore(
                self.state.ignored,
                "binding_callback",
                f"transactionId {callback.transactionId} is not this registration's",
            )
        elif self.callback is not None or self.state.status is not RegistrationStatus.PENDING:
            journal.ignore(
                self.state.ignored,
                "binding_callback",
                f"registration already has a result ({self.state.status.value}): duplicate",
            )
        else:
            self.callback = callback

    @workflow.query(name="state")
    def query_state(self) -> RegistrationState:
        return self.state
