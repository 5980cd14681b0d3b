"""Cards: ``register_card`` (a registration's webview, at once), its state, the cards
registered through Kartu (``list_cards``) beside the provider's list (``customer_cards``), and
``unbind_card`` (``unbind-<digest of the token>``: joined while it runs, run again after it
ended FAILED, or UNBOUND while the provider lists the token ACTIVE again)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ayoconnect.models import CardStatus, Customer
from workflows import CardRegistrationWorkflow, CardUnbindWorkflow
from workflows import search_attributes as sa
from workflows.ids import registration_workflow_id, unbind_workflow_id
from workflows.models import (
    RegistrationInput,
    RegistrationState,
    RegistrationStatus,
    UnbindInput,
    UnbindState,
    UnbindStatus,
)

from . import pages, summaries
from .core import _application_error, _outcome_wait, _unavailable
from .errors import (
    ActionRefused,
    InvalidRequest,
    KartuTimeout,
    RegistrationNotFound,
    UnbindNotFound,
)
from .models import CardSummary, CustomerCards, RegistrationStarted, _CustomerIdOnly
from .provider import ProviderMixin
from .validation import _enum, _key, _validated

REGISTRATION_WORKFLOW_TYPE = "CardRegistration"
SETTLED_REGISTRATION = frozenset(set(RegistrationStatus) - {RegistrationStatus.PENDING})


class CardsMixin(ProviderMixin):
    async def register_card(
        self,
        registration_id: str,
        *,
        name: str,
        email: str,
        phone_number: str,
        redirect_url: str,
        customer_id: str | None = None,
        failed_redirect_url: str | None = None,
        callback_margin: timedelta | None = None,
        timeout: float | None = None,
    ) -> RegistrationStarted:
        """Start ``registration-<registrationId>`` and return its webview URL at once.
        Asking again with the same id returns the same registration's webview. KartuTimeout
        if the webview is not there within ``timeout`` (the registration carries on)."""
        workflow_id = _key(registration_workflow_id, registration_id, "registration_id")
        customer = _validated(
            Customer,
            {"customerId": customer_id, "name": name, "email": email, "phoneNumber": phone_number},
            rename={"customerId": "customer_id", "phoneNumber": "phone_number"},
        )
        data: dict[str, Any] = {
            "registration_id": registration_id,
            "customer": customer,
            "redirect_url": redirect_url,
            "failed_redirect_url": failed_redirect_url,
        }
        if callback_margin is not None:
            data["callback_margin"] = callback_margin
        registration = _validated(RegistrationInput, data)
        attributes = [SearchAttributePair(sa.FLOW, "REGISTRATION")]
        if customer_id:
            attributes.append(SearchAttributePair(sa.CUSTOMER_ID, customer_id))
        start = WithStartWorkflowOperation(
            CardRegistrationWorkflow.run,
            registration,
            id=workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(attributes),
            **summaries.registration(registration).start_options(),
        )
        try:
            async with asyncio.timeout(_outcome_wait(self.outcome_timeout, timeout)):
                webview = await self._update_with_start(CardRegistrationWorkflow.webview, start)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise KartuTimeout(
                f"registration {registration_id}: no webview in time; read registration_status"
            ) from None
        except WorkflowAlreadyStartedError:
            # Finished already: its webview (perhaps expired) is still in its state.
            state = await self.registration_status(registration_id)
            if state.webview is None:
                raise ActionRefused(
                    f"registration is {state.status.value}: {state.reason or 'no webview'}"
                ) from None
            webview = state.webview
        except WorkflowUpdateFailedError as err:
            cause = _application_error(err)
            raise ActionRefused(cause.message if cause else "webview not generated") from None
        return RegistrationStarted(
            registration_id=registration_id, workflow_id=workflow_id, webview=webview
        )

    async def registration_status(self, registration_id: str) -> RegistrationState:
        workflow_id = _key(registration_workflow_id, registration_id, "registration_id")
        state = await self._query(workflow_id, RegistrationState)
        if state is None:
            raise RegistrationNotFound(f"no registration {registration_id}")
        return state

    async def wait_registration(
        self,
        registration_id: str,
        statuses: Iterable[RegistrationStatus | str] | None = None,
        timeout: float = 30.0,
    ) -> RegistrationState:
        """Poll the registration's state until its status is one of ``statuses`` (default:
        any result, REGISTERED / FAILED / EXPIRED); KartuTimeout after ``timeout`` seconds."""
        wanted = (
            {_enum(RegistrationStatus, s, "statuses") for s in statuses}
            if statuses is not None
            else SETTLED_REGISTRATION
        )
        return await self._poll(
            lambda: self.registration_status(registration_id),
            lambda s: s.status in wanted,
            timeout,
            f"registration {registration_id}",
        )

    async def list_cards(self, customer_id: str, limit: int = 100) -> list[CardSummary]:
        """Cards registered through Kartu for this customer (registration workflows found by
        ``KartuCustomerId``, read through their ``state`` query), DISABLED once unbound through
        Kartu. Not the provider's list: cards bound or disabled elsewhere are not seen."""
        query = self._cards_query(customer_id)
        try:
            ids = [e.id async for e in self._client.list_workflows(query, limit=limit)]
        except RPCError as err:
            raise _unavailable(err) from None
        return await self._cards_of(ids)

    async def list_cards_page(
        self, customer_id: str, *, page_size: int = 100, page_token: str | None = None
    ) -> pages.CardPage:
        """``list_cards`` a page of registrations at a time (newest first): their cards, and the
        ``next_page_token`` to pass as ``page_token`` (None: the last page). A card registered
        twice shows on the page of each registration."""
        query = self._cards_query(customer_id)
        size = pages.page_size(page_size)
        _, token = pages.decode_token(page_token, query, ("registrations",))
        listed = self._client.list_workflows(query, page_size=size, next_page_token=token)
        try:
            await listed.fetch_next_page()
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                field = "page_token" if page_token else None
                raise InvalidRequest(f"search refused: {err.message}", field) from None
            raise _unavailable(err) from None
        cards = await self._cards_of([e.id for e in listed.current_page or ()])
        following = listed.next_page_token
        return pages.CardPage(
            cards=cards,
            next_page_token=(
                pages.encode_token(query, "registrations", following) if following else None
            ),
        )

    @staticmethod
    def _cards_query(customer_id: str) -> str:
        checked = _validated(_CustomerIdOnly, {"customer_id": customer_id}).customer_id
        return (
            f"WorkflowType = '{REGISTRATION_WORKFLOW_TYPE}' AND {sa.CUSTOMER_ID.name} = '{checked}'"
        )

    async def _cards_of(self, registration_ids: list[str]) -> list[CardSummary]:
        """The cards these registration workflows registered, DISABLED once unbound."""
        states = await asyncio.gather(
            *(self._query(i, RegistrationState) for i in registration_ids)
        )
        cards: dict[str, CardSummary] = {}
        registered = [
            s
            for s in states
            if s is not None and s.status is RegistrationStatus.REGISTERED and s.card_token
        ]
        unbinds = await asyncio.gather(
            *(self._query(unbind_workflow_id(s.card_token or ""), UnbindState) for s in registered)
        )
        for s, unbind in zip(registered, unbinds, strict=True):
            assert s.card_token is not None
            unbound = unbind is not None and unbind.status is UnbindStatus.UNBOUND
            cards[s.card_token] = CardSummary(
                card_token=s.card_token,
                masked_card=s.masked_card,
                brand=s.brand,
                status="DISABLED" if unbound else "ACTIVE",
                registration_id=s.registration_id,
            )
        return list(cards.values())

    async def customer_cards(
        self, customer_id: str, *, timeout: float | None = None
    ) -> CustomerCards:
        """The customer's cards as Ayoconnect lists them (cards bound or disabled elsewhere
        included), each with Kartu's registration id where Kartu registered it (from
        ``list_cards``); cards Kartu registered that the provider does not list come last,
        with no provider status."""
        provider, registered = await asyncio.gather(
            self.provider_cards(customer_id, timeout=timeout), self.list_cards(customer_id)
        )
        return CustomerCards.merged(provider, registered)

    async def unbind_card(
        self, card_token: str, *, customer_id: str, wait: bool = True, timeout: float = 30.0
    ) -> UnbindState:
        """Disable a card token: ``unbind-<token digest>``. Asking while it runs joins it; after
        it ended FAILED, or UNBOUND while Ayoconnect lists the token ACTIVE again (the card was
        registered again), asking again runs it again with ``attempt`` + 1; otherwise the same
        unbind answers."""
        unbind = _validated(UnbindInput, {"card_token": card_token, "customer_id": customer_id})
        workflow_id = unbind_workflow_id(unbind.card_token)

        async def again(previous: UnbindState) -> bool:
            if previous.status is UnbindStatus.FAILED:
                return True
            if previous.status is not UnbindStatus.UNBOUND:
                return False
            # The same card registered again has the same token: unbound again only if the
            # provider lists it ACTIVE, so asking twice still answers the same unbind.
            listed = await self.provider_cards(unbind.customer_id)
            return any(
                c.cardToken == unbind.card_token and c.status is CardStatus.ACTIVE
                for c in listed.cards
            )

        await self._start_or_retry(
            CardUnbindWorkflow.run,
            unbind,
            workflow_id,
            UnbindState,
            again,
            "the unbind of this card",
            summaries.unbind,
        )
        state = await self._wait_result(workflow_id, UnbindState, wait, timeout)
        if state is None:
            raise UnbindNotFound("unbind workflow vanished")  # retention ran out meanwhile
        return state
