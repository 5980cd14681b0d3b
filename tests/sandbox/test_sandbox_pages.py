"""The customer's pages: webview card form and OTP, 3DS challenge, expiry, and what they must
never show or keep (the clear card number and CVV)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from sandbox.customer import CustomerError, authenticate_3ds, default_expiry, register_card

PAN = "4111111111111111"


async def _webview(wire: Any, **customer: Any) -> dict[str, Any]:
    response = await wire.post(
        "generate_webview_path",
        {
            "transactionId": "wv-" + uuid.uuid4().hex[:12],
            "customer": {
                "name": "Page Tester",
                "email": "pages@example.com",
                "phoneNumber": "6281111111111",
                **customer,
            },
            "redirectUrl": "https://merchant.example/ok",
            "failedRedirectUrl": "https://merchant.example/failed",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_webview_answer_shape(wire: Any) -> None:
    body = await _webview(wire)
    assert body["responseCode"] == "2010101"
    assert body["webview"]["url"].startswith(str(wire.http.base_url).rstrip("/") + "/webview/")
    assert len(body["webview"]["expiresAt"]) == 25
    assert body["referenceNumber"]


async def test_webview_page_is_a_card_form(wire: Any) -> None:
    page = await wire.http.get((await _webview(wire))["webview"]["url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    for field in ("cardNumber", "cardholderName", "expiry", "cvv"):
        assert f'name="{field}"' in page.text
    assert '<form method="post"' in page.text
    assert "<script" not in page.text


async def test_card_form_and_otp_bind_the_card_and_send_a_signed_callback(
    wire: Any, receiver: Any, control: Any
) -> None:
    webview = await _webview(wire)
    result = await register_card(webview["webview"]["url"], card_number=PAN)
    assert result.status_code == 303
    assert result.location == "https://merchant.example/ok"

    callback = await receiver.wait_for(
        lambda c: c.body["referenceNumber"] == webview["referenceNumber"]
    )
    assert callback.signature_valid
    body = callback.body
    assert body["type"] == "CARD_BINDING" and body["status"] == "ACTIVE"
    assert body["responseCode"] == "2000101"
    assert re.fullmatch(r"[A-Za-z0-9]{40}", body["cardToken"])
    assert re.fullmatch(r"[A-Za-z0-9]{6,16}", body["customerId"])
    assert body["maskedCard"] == "411111******1111"
    assert body["brand"] == "VISA"
    assert body["expiryMonth"] == "12" and body["expiryYear"] == "20" + default_expiry()[-2:]

    ledger = await control.ledger()
    assert [c["cardToken"] for c in ledger["cards"]] == [body["cardToken"]]
    assert PAN not in str(ledger)


async def test_a_known_customer_keeps_its_id(wire: Any, receiver: Any) -> None:
    first = await wire.register(receiver, "5555555555554444")
    assert first["brand"] == "MASTERCARD"
    second = await wire.register(receiver, PAN, customerId=first["customerId"])
    assert second["customerId"] == first["customerId"]
    assert second["cardToken"] != first["cardToken"]
    cards = await wire.get(
        "cards_list_path", {"transactionId": "list-1", "customerId": first["customerId"]}
    )
    assert [c["cardToken"] for c in cards.json()["cards"]] == [
        first["cardToken"],
        second["cardToken"],
    ]


async def test_wrong_otp_fails_the_binding(wire: Any, receiver: Any, control: Any) -> None:
    webview = await _webview(wire)
    result = await register_card(webview["webview"]["url"], card_number=PAN, otp="000000")
    assert result.location == "https://merchant.example/failed"
    callback = await receiver.wait_for(
        lambda c: c.body["referenceNumber"] == webview["referenceNumber"]
    )
    assert callback.body["status"] == "FAILED"
    assert callback.body["responseCode"] == "4000104"  # AUTHENTICATION_FAILED
    assert "cardToken" not in callback.body
    assert "customerId" not in callback.body  # a new customer: no id was assigned
    assert (await control.ledger())["cards"] == []


@pytest.mark.parametrize(
    ("pan", "code"), [("4000000000000069", "4000121"), ("4000000000000127", "4000123")]
)
async def test_unbindable_test_cards_fail_with_their_code(
    wire: Any, receiver: Any, pan: str, code: str
) -> None:
    body = await wire.register(receiver, pan)
    assert body["status"] == "FAILED"
    assert body["responseCode"] == code


@pytest.mark.parametrize("pan", ["4000000000000002", "4000000000009995", "4000000000003220"])
async def test_declining_and_3ds_cards_still_bind(wire: Any, receiver: Any, pan: str) -> None:
    assert (await wire.register(receiver, pan))["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cardNumber", "4111111111111112", "card number is not valid"),
        ("expiry", "01/20", "expiry must be in the future"),
        ("expiry", "13/30", "expiry must be MM/YY"),
        ("cvv", "12", "CVV must be 3 or 4 digits"),
        ("cardholderName", "", "name on the card is required"),
    ],
)
async def test_card_form_errors_re_render_without_the_card_data(
    wire: Any, field: str, value: str, message: str
) -> None:
    url = (await _webview(wire))["webview"]["url"]
    form = {"cardNumber": PAN, "cardholderName": "A B", "expiry": "12/30", "cvv": "987"}
    form[field] = value
    page = await wire.http.post(url, data=form)
    assert page.status_code == 400
    assert message in page.text
    # The page holds random values (the webview URL's port and token, the expiry time): the
    # short CVV is looked for on its own (as a field value or text would hold it), outside that
    # URL, never inside a longer number or token.
    shown = page.text.replace(url, "").replace(url.split("/webview/")[0], "")
    assert PAN not in shown and not re.search(r"(?<![\w-])987(?![\w-])", shown)
    assert 'name="cvv"' in page.text  # the form is re-rendered, its CVV field empty
    # The session is still open: the customer can correct the form.
    assert (await wire.http.get(url)).status_code == 200


async def test_customer_helper_reports_form_errors(wire: Any) -> None:
    url = (await _webview(wire))["webview"]["url"]
    with pytest.raises(CustomerError, match="card number is not valid") as raised:
        await register_card(url, card_number="1234567890123")
    assert raised.value.status_code == 400


async def test_expired_webview_says_so(wire: Any, control: Any) -> None:
    url = (await _webview(wire))["webview"]["url"]
    await control.advance_clock(301)
    page = await wire.http.get(url)
    assert page.status_code == 410
    assert "expired" in page.text
    posted = await wire.http.post(url, data={"cardNumber": PAN})
    assert posted.status_code == 410
    assert [s["state"] for s in (await control.ledger())["sessions"]] == ["expired"]


async def test_customer_helper_reports_an_expired_session(wire: Any, control: Any) -> None:
    url = (await _webview(wire))["webview"]["url"]
    await control.advance_clock(600)
    with pytest.raises(CustomerError, match="Session expired") as raised:
        await register_card(url, card_number=PAN)
    assert raised.value.status_code == 410


async def test_completed_webview_cannot_be_reused(wire: Any, receiver: Any) -> None:
    url = (await _webview(wire))["webview"]["url"]
    await register_card(url, card_number=PAN)
    assert (await wire.http.get(url)).status_code == 409
    assert (await wire.http.get(url + "/otp")).status_code == 409


async def test_unknown_page_is_404(wire: Any) -> None:
    assert (await wire.http.get("/webview/nope")).status_code == 404
    assert (await wire.http.get("/3ds/nope")).status_code == 404


# --- 3DS ------------------------------------------------------------------------------------


async def _challenged_payment(
    wire: Any, receiver: Any, operation: str = "PAY", redirect: bool = True
) -> dict[str, Any]:
    binding = await wire.register(receiver, "4000000000003220")
    body = {
        "transactionId": f"3ds-{operation}-{binding['cardToken'][:8]}",
        "customerId": binding["customerId"],
        "operation": operation,
        "cardToken": binding["cardToken"],
        "order": {"id": "o-3ds", "amount": "250000.00"},
    }
    if redirect:
        body["redirectUrl"] = "https://merchant.example/3ds-done"
    response = await wire.post("create_charge_path", body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["responseCode"] == "2015405"
    assert answer["status"] == "AUTHENTICATION_IN_PROGRESS"
    return answer


async def _status(wire: Any, answer: dict[str, Any], customer_id: str) -> dict[str, Any]:
    response = await wire.get(
        "payment_status_path",
        {
            "transactionId": "st-1",
            "customerId": customer_id,
            "invoiceNumber": answer["invoiceNumber"],
        },
    )
    return response.json()["payment"]


async def test_3ds_page_asks_the_otp_and_confirms(wire: Any, receiver: Any, control: Any) -> None:
    answer = await _challenged_payment(wire, receiver)
    page = await wire.http.get(answer["authenticationUrl"])
    assert page.status_code == 200
    assert 'name="otp"' in page.text and "250,000.00" in page.text
    assert "400000******3220" in page.text

    result = await authenticate_3ds(answer["authenticationUrl"])
    assert result.location == "https://merchant.example/3ds-done"
    payment = await control.payment(answer["transactionId"])
    assert payment["state"] == "SUCCESS"
    assert [op["operation"] for op in payment["operations"]] == ["PAY", "AUTHENTICATE"]
    callback = await receiver.wait_for(
        lambda c: c.body.get("invoiceNumber") == answer["invoiceNumber"]
    )
    assert callback.body["status"] == "SUCCESS"
    assert callback.body["responseCode"] == "2005401"
    assert callback.signature_valid


async def test_3ds_authorize_becomes_authorized(wire: Any, receiver: Any, control: Any) -> None:
    answer = await _challenged_payment(wire, receiver, "AUTHORIZE", redirect=False)
    result = await authenticate_3ds(answer["authenticationUrl"])
    assert result.status_code == 200 and "confirmed" in result.text
    payment = await control.payment(answer["transactionId"])
    assert payment["state"] == "AUTHORIZED"
    assert payment["authorizationExpiresAt"] is not None


async def test_3ds_wrong_otp_fails_the_payment(wire: Any, receiver: Any, control: Any) -> None:
    answer = await _challenged_payment(wire, receiver)
    await authenticate_3ds(answer["authenticationUrl"], otp="111111")
    payment = await control.payment(answer["transactionId"])
    assert payment["state"] == "FAILED"
    assert payment["operations"][-1]["responseCode"] == "4005404"
    callback = await receiver.wait_for(
        lambda c: c.body.get("invoiceNumber") == answer["invoiceNumber"]
    )
    assert callback.body["status"] == "FAILED"
    assert (await wire.http.get(answer["authenticationUrl"])).status_code == 409


async def test_expired_3ds_fails_the_payment(wire: Any, receiver: Any, control: Any) -> None:
    answer = await _challenged_payment(wire, receiver)
    await control.advance_clock(301)
    page = await wire.http.get(answer["authenticationUrl"])
    assert page.status_code == 410 and "expired" in page.text
    payment = await control.payment(answer["transactionId"])
    assert payment["state"] == "FAILED"
    assert payment["operations"][-1]["note"] == "3DS session expired"
    callback = await receiver.wait_for(
        lambda c: c.body.get("invoiceNumber") == answer["invoiceNumber"]
    )
    assert callback.body["status"] == "FAILED"


async def test_pages_refuse_a_non_form_body(wire: Any) -> None:
    url = (await _webview(wire))["webview"]["url"]
    response = await wire.http.post(url, content=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert "could not be read" in response.text


async def test_only_ascii_digits_are_card_numbers(wire: Any) -> None:
    url = (await _webview(wire))["webview"]["url"]
    arabic_indic = PAN.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    page = await wire.http.post(
        url,
        data={"cardNumber": arabic_indic, "cardholderName": "A", "expiry": "12/30", "cvv": "١٢٣"},
    )
    assert page.status_code == 400
    assert "card number is not valid" in page.text and "CVV must be" in page.text
