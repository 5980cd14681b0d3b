"""Acting as the customer over plain HTTP: fill the webview's card form and OTP, or answer the
3DS challenge, exactly as a browser would (read the page's form, post it, follow the 303s).

Used by tests and by local tooling. The final redirect to the merchant's URL is reported, not
followed: the merchant's page need not exist.

    result = await register_card(webview_url, card_number="4111111111111111")
    assert result.location == redirect_url
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

from ayoconnect.tls import tls_context

from .test_cards import TEST_OTP


class CustomerError(Exception):
    """The page did not behave like the registration or 3DS flow (form missing, error shown)."""

    def __init__(self, message: str, *, status_code: int, page_errors: list[str]) -> None:
        super().__init__(message + (": " + "; ".join(page_errors) if page_errors else ""))
        self.status_code = status_code
        self.page_errors = page_errors


@dataclass(frozen=True)
class PageResult:
    """Where the customer ended: a 303 to the merchant (``location``), or a final page."""

    status_code: int
    location: str | None
    text: str


@dataclass
class _Form:
    action: str = ""
    method: str = "get"
    inputs: list[str] = field(default_factory=list)


class _FormReader(HTMLParser):
    """The page's first form (action, method, input names) and any error messages shown."""

    def __init__(self) -> None:
        super().__init__()
        self.form: _Form | None = None
        self.errors: list[str] = []
        self._in_form = False
        self._in_errors = 0
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done:
            self.form = _Form(values.get("action", ""), values.get("method", "get").lower())
            self._in_form = True
        elif tag == "input" and self._in_form and self.form is not None and "name" in values:
            self.form.inputs.append(values["name"])
        elif tag == "ul" and "errors" in values.get("class", "").split():
            self._in_errors += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True
        elif tag == "ul" and self._in_errors:
            self._in_errors -= 1

    def handle_data(self, data: str) -> None:
        if self._in_errors and data.strip():
            self.errors.append(data.strip())


def default_expiry() -> str:
    """An expiry (MM/YY) safely in the future."""
    return f"12/{(date.today().year + 3) % 100:02d}"


async def register_card(
    webview_url: str,
    *,
    card_number: str,
    cardholder_name: str = "KARTU TESTER",
    expiry: str | None = None,
    cvv: str = "123",
    otp: str = TEST_OTP,
    http: httpx.AsyncClient | None = None,
) -> PageResult:
    """Open the webview, submit the card, then the OTP; returns the redirect to the merchant."""
    async with _session(http) as client:
        page = await client.get(webview_url)
        form = _read_form(page, "the card form")
        answer = await _submit(
            client,
            page,
            form,
            {
                "cardNumber": card_number,
                "cardholderName": cardholder_name,
                "expiry": expiry or default_expiry(),
                "cvv": cvv,
            },
        )
        if answer.status_code != 303:
            raise _page_error(answer, "a redirect to the OTP page")
        otp_page = await client.get(urljoin(str(answer.url), answer.headers["location"]))
        otp_form = _read_form(otp_page, "the OTP form")
        final = await _submit(client, otp_page, otp_form, {"otp": otp})
        return _result(final)


async def authenticate_3ds(
    authentication_url: str, *, otp: str = TEST_OTP, http: httpx.AsyncClient | None = None
) -> PageResult:
    """Answer the 3DS challenge; returns the redirect to the merchant or the result page."""
    async with _session(http) as client:
        page = await client.get(authentication_url)
        form = _read_form(page, "the 3DS form")
        return _result(await _submit(client, page, form, {"otp": otp}))


@asynccontextmanager
async def _session(http: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    if http is not None:
        yield http
        return
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False, verify=tls_context()) as own:
        yield own


def _read_form(page: httpx.Response, what: str) -> _Form:
    reader = _FormReader()
    reader.feed(page.text)
    if page.status_code != 200 or reader.form is None:
        raise _page_error(page, what)
    return reader.form


def _page_error(page: httpx.Response, expected: str) -> CustomerError:
    """What the page said instead: its error list, or its heading (e.g. "Session expired")."""
    reader = _FormReader()
    reader.feed(page.text)
    title = re.search(r"<h1>(.*?)</h1>", page.text, re.S)
    errors = reader.errors or ([title.group(1).strip()] if title else [])
    return CustomerError(
        f"expected {expected}, got HTTP {page.status_code}",
        status_code=page.status_code,
        page_errors=errors,
    )


async def _submit(
    client: httpx.AsyncClient, page: httpx.Response, form: _Form, values: dict[str, str]
) -> httpx.Response:
    missing = [name for name in values if name not in form.inputs]
    if missing:
        raise CustomerError(
            f"the form has no field {', '.join(missing)}",
            status_code=page.status_code,
            page_errors=[],
        )
    action = urljoin(str(page.url), form.action or str(page.url))
    return await client.request(form.method.upper(), action, data=values, follow_redirects=False)


def _result(response: httpx.Response) -> PageResult:
    location = response.headers.get("location") if response.status_code in (302, 303) else None
    return PageResult(response.status_code, location, response.text)
