"""Card registration: webview → binding callbacks (hints) → cards list (truth) →
REGISTERED | FAILED | EXPIRED, or UNCONFIRMED when the cards list could not be read.

The ``webview`` update returns the webview URL as soon as it exists (update-with-start early
return). Binding callbacks are awaited for the webview session (``expiresAt``) plus a margin
(10 minutes by default: Ayoconnect retries a callback after 1, 2 and 5 minutes).

A binding callback is a hint, never the result: its ``X-Authorization`` header does not bind
the body, and a FAILED callback may be followed by the real ACTIVE one. So:
- an ACTIVE callback is checked against the provider's cards list (of the callback's customer,
  which must be the registration's customer when that is known): REGISTERED only when the list
  shows the callback's card token ACTIVE and, if a list was taken before the webview opened, not
  in it (a new card);
- a FAILED callback ends nothing while the session is open: another callback may still come;
- at the end of the wait the cards list decides: the claimed card, or the one new ACTIVE card of
  a known customer → REGISTERED; none → FAILED with the FAILED callback's responseCode if one
  came, else EXPIRED. With no customer id at all (a new customer and no ACTIVE callback) there is
  nothing to look up, and the callbacks are all there is.
When the cards list cannot be read, the look-up is retried on a backoff for
``policies.REGISTRATION_CONFIRM_WINDOW``, then the registration ends UNCONFIRMED with what the
callbacks claimed: Kartu does not invent a result. Callbacks acted on are bounded
(``policies.MAX_BINDING_CALLBACKS``; identical ones are duplicates), so a flood cannot grow the
history. Handlers only record callbacks; ``run`` acts on them.
Workflow id ``registration-<registrationId>``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from . import ids, journal, policies
from . import search_attributes as sa
from .provider import Provider, ProviderError
from .provider_time import aware

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import BindingCallback, Card, CardStatus, GenerateWebviewRequest

    from .models import RegistrationInput, RegistrationState, RegistrationStatus, WebviewInfo

REGISTRATION_FLOW = "REGISTRATION"
CallbackKey = tuple[str, str | None, str | None, str]


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
        self.known_cards: set[str] | None = None  # the customer's cards before the webview
        self.inbox: list[BindingCallback] = []  # recorded by the handler, taken by ``run``
        self.accepted: set[CallbackKey] = set()
        self.claims: list[BindingCallback] = []  # ACTIVE callbacks, not confirmed yet
        self.failed_callback: BindingCallback | None = None

    @workflow.run
    async def run(self, registration: RegistrationInput) -> RegistrationState:
        self._upsert_search_attributes()
        self.known_cards = await self._cards_before()
        if await self._open_webview():
            await self._wait_for_binding()
            if self.state.status is RegistrationStatus.PENDING:
                await self._decide()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    # --- steps ------------------------------------------------------------------------------

    async def _cards_before(self) -> set[str] | None:
        if self.state.customer_id is None:
            return None
        cards = await self._cards_of(self.state.customer_id)
        if cards is None:
            workflow.logger.warning("cards list before the webview could not be read")
            return None
        return {c.cardToken for c in cards}

    async def _open_webview(self) -> bool:
        request = GenerateWebviewRequest(
            transactionId=self.transaction_id,
            customer=self.input.customer.wire(),
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
        """Until the session (+ margin) ends or a callback's card is confirmed."""
        assert self.state.webview is not None
        until = self.state.webview.expires_at + self.input.callback_margin
        while self.state.status is RegistrationStatus.PENDING:
            remaining = until - workflow.now()
            if remaining <= timedelta(0):
                return
            try:
                await workflow.wait_condition(
                    lambda: bool(self.inbox), timeout=remaining, timeout_summary="webview session"
                )
            except TimeoutError:
                return
            new_claims = self._take_callbacks()
            if new_claims:
                await self._confirm(new_claims)

    async def _confirm(self, new_claims: list[BindingCallback]) -> None:
        """One look-up per customer the new claims name (so at most one per accepted
        callback); an unreadable list is left to ``_decide``."""
        for customer in _customers(new_claims):
            cards = await self._cards_of(customer)
            if cards is not None and self._register_claim(customer, cards):
                return

    async def _decide(self) -> None:
        """The end of the wait: the cards list decides, read on a backoff while it is down."""
        delays = policies.registration_confirm_delays()
        give_up_at = workflow.now() + policies.REGISTRATION_CONFIRM_WINDOW
        while True:
            self._take_callbacks()  # callbacks still come while the list is down
            customers = self._customers_to_check()
            if not customers:
                self._end_without_card("")
                return
            unread = False
            for customer in customers:
                cards = await self._cards_of(customer)
                if cards is None:
                    unread = True
                elif self._register_claim(customer, cards) or self._register_new_card(
                    customer, cards
                ):
                    return
            if not unread:
                self._end_without_card(self._unconfirmed_claims())
                return
            if workflow.now() >= give_up_at:
                self._end_unconfirmed()
                return
            await workflow.sleep(
                min(next(delays), max(give_up_at - workflow.now(), timedelta(seconds=1))),
                summary="cards list unreadable",
            )

    # --- reading callbacks and cards ----------------------------------------------------------

    def _take_callbacks(self) -> list[BindingCallback]:
        """Sort the recorded callbacks into claims and failures; returns the new claims."""
        claimed: list[BindingCallback] = []
        while self.inbox:
            callback = self.inbox.pop(0)
            if callback.status != "ACTIVE":
                self.failed_callback = callback
                self.state.response_code = callback.responseCode
            elif not (callback.cardToken and callback.customerId):
                self._ignore("ACTIVE binding callback without card token or customerId")
            elif self.input.customer.customerId not in (None, callback.customerId):
                self._ignore(
                    f"binding callback names customer {callback.customerId}, "
                    f"not this registration's {self.input.customer.customerId}"
                )
            else:
                self.claims.append(callback)
                claimed.append(callback)
        return claimed

    def _customers_to_check(self) -> list[str]:
        known = self.input.customer.customerId
        return [known] if known is not None else _customers(self.claims)

    async def _cards_of(self, customer_id: str) -> list[Card] | None:
        """The customer's cards; [] if the provider refuses the look-up for good (unknown
        customer, an id it rejects); None if it could not be read (no answer)."""
        try:
            return (await self.provider.list_cards(customer_id)).cards
        except ProviderError as err:
            if err.failure.final:
                workflow.logger.info("cards list refused: %s", err)
                return []
            workflow.logger.warning("cards list look-up failed: %s", err)
            return None

    def _is_new(self, card: Card) -> bool:
        return card.status is CardStatus.ACTIVE and card.cardToken not in (
            self.known_cards or set()
        )

    def _register_claim(self, customer_id: str, cards: list[Card]) -> bool:
        """REGISTERED if the list shows a claimed card of this customer, new and ACTIVE."""
        tokens = {c.cardToken: c for c in cards if self._is_new(c)}
        for claim in reversed(self.claims):  # the latest callback first
            card = tokens.get(claim.cardToken or "")
            if claim.customerId == customer_id and card is not None:
                self.state.response_code = claim.responseCode
                self._register(customer_id, card, "binding callback confirmed by the cards list")
                return True
        return False

    def _register_new_card(self, customer_id: str, cards: list[Card]) -> bool:
        """Without a confirmed claim: the one new ACTIVE card of a customer whose cards were
        listed before the webview is the registered one."""
        if self.known_cards is None or customer_id != self.input.customer.customerId:
            return False
        new = [c for c in cards if self._is_new(c)]
        if len(new) == 1:
            self._register(customer_id, new[0], "new ACTIVE card found in the cards list")
            return True
        if len(new) > 1:
            self._end_unconfirmed(f"{len(new)} new ACTIVE cards in the cards list: which one?")
            return True
        return False

    def _unconfirmed_claims(self) -> str:
        if not self.claims:
            return ""
        return f" ({len(self.claims)} ACTIVE callback(s) for a card the cards list does not show)"

    # --- endings ----------------------------------------------------------------------------

    def _register(self, customer_id: str, card: Card, reason: str) -> None:
        self.state.customer_id = customer_id
        self.state.card_token = card.cardToken
        self.state.masked_card = card.maskedCard
        self.state.brand = card.brand
        self.state.reason = None
        self._finish(RegistrationStatus.REGISTERED, reason)

    def _end_without_card(self, detail: str) -> None:
        failed = self.failed_callback
        if failed is not None:
            self.state.response_code = failed.responseCode
            self._finish(
                RegistrationStatus.FAILED, f"binding failed ({failed.responseCode}){detail}"
            )
        else:
            self._finish(
                RegistrationStatus.EXPIRED,
                f"no confirmed binding before the webview expired{detail}",
            )

    def _end_unconfirmed(self, why: str | None = None) -> None:
        """No truthful REGISTERED or FAILED: say what the callbacks claimed, unconfirmed."""
        if why is None:
            window = _minutes(policies.REGISTRATION_CONFIRM_WINDOW)
            why = f"cards list unreadable for {window} min after the webview ended"
        if self.claims:
            claim = self.claims[-1]
            self.state.customer_id = claim.customerId
            self.state.card_token = claim.cardToken
            self.state.masked_card = claim.maskedCard
            self.state.brand = claim.brand
            self.state.response_code = claim.responseCode
            why += "; an ACTIVE binding callback claimed the card shown, unconfirmed"
        elif self.failed_callback is not None:
            why += f"; a binding callback said FAILED ({self.failed_callback.responseCode})"
        self._finish(RegistrationStatus.UNCONFIRMED, why)

    def _finish(self, status: RegistrationStatus, reason: str) -> None:
        if status is not RegistrationStatus.REGISTERED:
            self.state.reason = reason
        journal.transition(self.state, status, reason)
        self._upsert_search_attributes()

    def _ignore(self, why: str) -> None:
        journal.ignore(self.state.ignored, "binding_callback", why)

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
        """Records the callback for ``run``; acts on nothing itself."""
        key: CallbackKey = (
            callback.status,
            callback.customerId,
            callback.cardToken,
            callback.responseCode,
        )
        if callback.transactionId != self.transaction_id:
            why = f"transactionId {callback.transactionId} is not this registration's"
        elif self.state.status is not RegistrationStatus.PENDING:
            why = f"registration already has a result ({self.state.status.value})"
        elif key in self.accepted:
            why = "duplicate binding callback"
        elif len(self.accepted) >= policies.MAX_BINDING_CALLBACKS:
            why = f"more than {policies.MAX_BINDING_CALLBACKS} binding callbacks"
        else:
            self.accepted.add(key)
            self.inbox.append(callback)
            return
        self._ignore(why)

    @workflow.query(name="state")
    def query_state(self) -> RegistrationState:
        return self.state


def _customers(claims: list[BindingCallback]) -> list[str]:
    """The distinct customer ids the claims name, in order (deterministic on replay)."""
    return list(dict.fromkeys(c.customerId for c in claims if c.customerId))


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
