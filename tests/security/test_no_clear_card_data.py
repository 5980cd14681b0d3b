"""No clear card data, secret or access token anywhere Kartu writes (DESIGN, "Data protection").

On a real ``kartu up`` stack whose every part (and every client here) uses a distinctive
``AYOCONNECT_CLIENT_SECRET``: encrypted-card PAYs with a distinctive PAN and CVV (through
``KartuClient`` and through the gateway's REST API), a card registration through the sandbox's
webview pages with another distinctive PAN, one through the ``kartu`` CLI with a third (typed
grouped in fours), a 3DS payment, a decline. Then every workflow history is exported with
``temporal workflow show --output json``, every execution described, all ``*.log`` of the data
directory read (JSON log lines) and every span the parts exported over OTLP, every HTTP header
captured (``security_stack.telemetry_env``), along with the ``kartu`` and ``temporal`` commands'
own output, the REST answers and the Temporal database files. None may hold a PAN (any
grouping), the CVV next to its field name, the client secret, an access token the sandbox issued
to the worker, the gateway API key or a codec key; payload inputs and results must be
``binary/encrypted``, and even decrypted with the codec keys a payload holds no clear PAN or CVV:
only the JWE the backend made.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from security_scan import (
    ENCRYPTED,
    Hit,
    Needle,
    clear_views,
    decrypt_payloads,
    find,
    payload_encodings,
)
from security_stack import REDIRECT_URL, SecureUp, luhn_complete

from ayoconnect.models import CardData
from ayoconnect.security import encrypt_card
from sandbox.control_client import SandboxControl
from sandbox.customer import authenticate_3ds, register_card
from starter.client import KartuClient

# Luhn-valid and in no special table of the sandbox: approved frictionlessly.
PAN_PAY = luhn_complete("453972836192045")
PAN_WEBVIEW = luhn_complete("455688123409876")
PAN_CLI = luhn_complete("535791246801357")
CHALLENGE_PAN = "4000000000003220"
DECLINE_PAN = "4000000000000002"
PANS = {
    "PAN (encrypted-card PAY)": PAN_PAY,
    "PAN (webview registration)": PAN_WEBVIEW,
    "PAN (CLI registration)": PAN_CLI,
    "PAN (3DS card)": CHALLENGE_PAN,
    "PAN (declined card)": DECLINE_PAN,
}
CVV = "739"
SPANS = "spans exported over OTLP"
CARDHOLDER = "Sekuritas Uji Tigatujuh"
EMAIL = "sekuritas.uji@example.com"
PHONE = "6281398765432"


def grouped(pan: str) -> str:
    return " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))


def masked(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


@dataclass
class Evidence:
    """Everything gathered, as (source, text) pairs."""

    ids: dict[str, str] = field(default_factory=dict)
    card_tokens: list[str] = field(default_factory=list)
    workflow_ids: list[str] = field(default_factory=list)
    temporal_views: list[tuple[str, str]] = field(default_factory=list)
    decrypted: list[tuple[str, str]] = field(default_factory=list)
    encodings: list[tuple[str, str, bool]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    databases: list[tuple[str, str]] = field(default_factory=list)
    sandbox_db: list[tuple[str, str]] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    visible_workflows: int = 0
    runs: int = 0


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def encrypted(pan: str, public_key: str) -> str:
    card = CardData(
        pan=pan, expiryMonth="11", expiryYear="2034", cvv=CVV, cardholderName=CARDHOLDER
    )
    return encrypt_card(card, public_key)


async def run_scenario(
    up: SecureUp,
    kartu: KartuClient,
    control: SandboxControl,
    gateway: httpx.AsyncClient,
    evidence: Evidence,
) -> None:
    public_key = await control.public_key()
    customer = "SEC" + uuid.uuid4().hex[:10].upper()
    ids = evidence.ids
    answers: list[tuple[str, Any]] = []

    async def pay_encrypted() -> None:
        ids["pay"] = new_id("secpay")
        outcome = await kartu.pay(
            ids["pay"],
            customer_id=customer,
            amount="150000",
            redirect_url=REDIRECT_URL,
            encrypted_card=encrypted(PAN_PAY, public_key),
        )
        answers.append(("KartuClient.pay", outcome))
        assert outcome.status.value == "PAID", outcome

    async def pay_rest() -> None:
        ids["rest"] = new_id("secrest")
        response = await gateway.post(
            "/payments",
            json={
                "payment_id": ids["rest"],
                "customer_id": customer,
                "amount": "99000.50",
                "encrypted_card": encrypted(PAN_PAY, public_key),
                "redirect_url": REDIRECT_URL,
            },
        )
        evidence.outputs.append(("POST /payments answer", response.text))
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "PAID", response.text
        read = await gateway.get(f"/payments/{ids['rest']}")
        evidence.outputs.append(("GET /payments/{id} answer", read.text))

    async def pay_3ds() -> None:
        ids["3ds"] = new_id("sec3ds")
        outcome = await kartu.pay(
            ids["3ds"],
            customer_id=customer,
            amount="250000",
            redirect_url=REDIRECT_URL,
            encrypted_card=encrypted(CHALLENGE_PAN, public_key),
        )
        assert outcome.status.value == "CHALLENGE" and outcome.authentication_url, outcome
        page = await authenticate_3ds(outcome.authentication_url)
        assert page.location == REDIRECT_URL, page
        state = await kartu.wait_payment(ids["3ds"], ["PAID"], timeout=20)
        answers.append(("KartuClient.wait_payment", state))

    async def decline() -> None:
        ids["decline"] = new_id("secdecl")
        outcome = await kartu.pay(
            ids["decline"],
            customer_id=customer,
            amount="50000",
            redirect_url=REDIRECT_URL,
            encrypted_card=encrypted(DECLINE_PAN, public_key),
        )
        answers.append(("KartuClient.pay (declined)", outcome))
        assert outcome.status.value == "DECLINED", outcome

    async def register_webview() -> None:
        ids["reg"] = new_id("secreg")
        started = await kartu.register_card(
            ids["reg"],
            name=CARDHOLDER,
            email=EMAIL,
            phone_number=PHONE,
            redirect_url=REDIRECT_URL,
        )
        page = await register_card(
            started.webview.url, card_number=PAN_WEBVIEW, cardholder_name=CARDHOLDER, cvv=CVV
        )
        assert page.location == REDIRECT_URL, page
        state = await kartu.wait_registration(ids["reg"], timeout=20)
        assert state.status.value == "REGISTERED" and state.card_token, state
        evidence.card_tokens.append(state.card_token)
        ids["token_pay"] = new_id("sectok")
        outcome = await kartu.pay(
            ids["token_pay"],
            customer_id=state.customer_id or "",
            amount="75000",
            redirect_url=REDIRECT_URL,
            card_token=state.card_token,
        )
        assert outcome.status.value == "PAID", outcome

    async def register_cli() -> None:
        ids["cli_reg"] = new_id("seccli")
        started = (
            await up.kartu(
                "register",
                ids["cli_reg"],
                "--name",
                CARDHOLDER,
                "--email",
                EMAIL,
                "--phone",
                PHONE,
                "--json",
            )
        ).json()
        page = await up.kartu(
            "sandbox",
            "card",
            started["webview"]["url"],
            "--card",
            grouped(PAN_CLI),
            "--cvv",
            CVV,
            "--name",
            CARDHOLDER,
            "--json",
        )
        assert page.json()["redirected_to"] == REDIRECT_URL
        state = (await up.kartu("registration", ids["cli_reg"], "--wait", "20", "--json")).json()
        assert state["status"] == "REGISTERED", state
        evidence.card_tokens.append(state["card_token"])
        (await up.kartu("cards", state["customer_id"], "--json")).json()

    await asyncio.gather(
        pay_encrypted(), pay_rest(), pay_3ds(), decline(), register_webview(), register_cli()
    )
    # The CLI's reads of what happened.
    await asyncio.gather(
        up.kartu("status", ids["3ds"], "--json"),
        up.kartu("status", ids["decline"]),
        up.kartu("payments", "--customer", customer, "--json"),
        up.kartu("sandbox", "ledger", "--sandbox-url", up.sandbox_url, "--json"),
    )
    for name, answer in answers:
        evidence.outputs.append((name, repr(answer) + "\n" + answer.model_dump_json()))


async def wait_callbacks_settled(
    control: SandboxControl, keys: list[str], timeout: float = 15
) -> None:
    """Every callback the sandbox owes this scenario is delivered, so the gateway log holds
    its handling (one binding or payment callback per flow)."""
    deadline = time.monotonic() + timeout
    while True:
        callbacks = [
            c
            for c in (await control.ledger())["callbacks"]
            if str(c["body"].get("transactionId", "")).split("-")[0] in keys
        ]
        if len(callbacks) >= len(keys) and all(c["state"] != "pending" for c in callbacks):
            return
        assert time.monotonic() < deadline, [(c["reference"], c["state"]) for c in callbacks]
        await asyncio.sleep(0.2)


async def export_temporal(up: SecureUp, evidence: Evidence) -> None:
    """Every execution (each run of each workflow id): history, description, decrypted."""
    listed = await up.temporal("workflow", "list", "--output", "json")
    executions = listed.json()
    evidence.temporal_views += clear_views("temporal workflow list", executions)
    runs = sorted({(e["execution"]["workflowId"], e["execution"]["runId"]) for e in executions})
    evidence.runs = len(runs)
    evidence.workflow_ids = sorted({workflow_id for workflow_id, _ in runs})
    codec = up.codec()
    slots = asyncio.Semaphore(12)

    async def export(workflow_id: str, run_id: str) -> None:
        which = ("-w", workflow_id, "-r", run_id, "--output", "json")
        async with slots:
            shown = await up.temporal("workflow", "show", *which)
            described = await up.temporal("workflow", "describe", *which)
        for what, result in (("show", shown), ("describe", described)):
            exported = result.json()
            source = f"temporal workflow {what} {workflow_id} {run_id}"
            evidence.temporal_views += clear_views(source, exported)
            evidence.encodings += payload_encodings(exported)
            plain = await decrypt_payloads(exported, codec)
            evidence.decrypted.append((f"{source} (decrypted)", "\n".join(plain)))

    await asyncio.gather(*(export(w, r) for w, r in runs))


def read_files(up: SecureUp, evidence: Evidence) -> None:
    data_dir = up.data_dir
    for log in sorted(data_dir.glob("*.log")):
        evidence.logs.append((log.name, log.read_text(encoding="utf-8", errors="replace")))
    assert up.spans is not None
    evidence.logs.append((SPANS, up.spans.text()))
    for db in sorted(data_dir.glob("temporal.sqlite*")):
        evidence.databases.append((db.name, db.read_bytes().decode("latin-1")))
    for db in sorted(data_dir.glob("sandbox.sqlite*")):
        evidence.sandbox_db.append((db.name, db.read_bytes().decode("latin-1")))
    for output in up.outputs:
        name = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(output.args[:3]))
        evidence.outputs.append((f"output of {name}", output.out + "\n" + output.err))
    events = "\n".join(json.dumps(e) for e in up.events)
    evidence.outputs.append(("output of kartu up --json", events))
    evidence.outputs.append(("output of kartu up", up.banner))
    # The tokens the sandbox issued (to the worker, and to no one else here).
    uri = f"file:{data_dir / 'sandbox.sqlite'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        evidence.access_tokens = [row[0] for row in db.execute("SELECT token FROM tokens")]


@pytest.fixture(scope="module")
async def evidence(
    secure_up: SecureUp,
    kartu: KartuClient,
    sandbox_control: SandboxControl,
    stack_gateway: httpx.AsyncClient,
) -> Evidence:
    gathered = Evidence()
    await run_scenario(secure_up, kartu, sandbox_control, stack_gateway, gathered)
    await wait_callbacks_settled(sandbox_control, list(gathered.ids.values()))
    await export_temporal(secure_up, gathered)
    read_files(secure_up, gathered)
    gathered.visible_workflows = (await kartu.temporal.count_workflows()).count
    return gathered


def secret_needles(up: SecureUp, evidence: Evidence) -> list[Needle]:
    """What must never be anywhere outside its own vault."""
    needles = [Needle.pan(name, pan) for name, pan in PANS.items()]
    needles.append(Needle.cvv(CVV))
    needles.append(Needle.literal("client secret", up.client_secret))
    needles.append(Needle.literal("gateway API key", up.api_key))
    for line in up.codec_keys_file.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            needles.append(Needle.literal("codec key", line.split(":", 1)[1].strip()))
    needles += [Needle.literal("access token", t) for t in evidence.access_tokens]
    needles.append(Needle("a Bearer token", re.compile(r"Bearer\s+[A-Za-z0-9]{28}(?![A-Za-z0-9])")))
    needles.append(
        Needle("an accessToken value", re.compile(r"accessToken\W{1,6}[A-Za-z0-9]{20,}"))
    )
    return needles


def report(hits: list[Hit]) -> str:
    return "clear secrets found:\n" + "\n".join(f"  {hit}" for hit in hits)


def test_the_scenario_left_evidence(evidence: Evidence) -> None:
    """The scan below is not vacuous: every flow's workflow was exported, the logs and the
    sandbox's token table were read, and the codec keys do open the payloads."""
    for key in ("pay", "rest", "3ds", "decline", "reg", "token_pay", "cli_reg"):
        prefix = "registration-" if key in ("reg", "cli_reg") else "payment-"
        assert prefix + evidence.ids[key] in evidence.workflow_ids, key
    # The export covered every execution visibility knows of.
    assert evidence.runs == evidence.visible_workflows
    assert {name for name, _ in evidence.logs} >= {"worker.log", "gateway.log", "sandbox.log"}
    assert evidence.access_tokens, "the sandbox issued no access token: the worker never paid?"
    decrypted = "\n".join(text for _, text in evidence.decrypted)
    assert masked(PAN_WEBVIEW) in decrypted  # the registration's result, decrypted
    assert masked(PAN_CLI) in decrypted
    assert re.search(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.", decrypted)  # the JWE, not the PAN
    gateway_log = dict(evidence.logs)["gateway.log"]
    assert "POST /callbacks/ayoconnect 200" in gateway_log  # callbacks went through it
    assert '"logger": "kartu.gateway.access"' in gateway_log  # JSON lines
    # Every part's spans were there to scan: the Ayoconnect calls (Bearer token in a captured
    # header), the gateway's requests (API key, callback signature), the sandbox's.
    spans = dict(evidence.logs)[SPANS]
    for expected in ("kartu-worker", "kartu-gateway", "kartu-sandbox", "[REDACTED]"):
        assert expected in spans, expected
    for expected in ("RunActivity:create_charge", "POST /callbacks/ayoconnect"):
        assert expected in spans, expected
    assert '"http.request.header.authorization"' in spans


def test_history_payloads_are_encrypted(evidence: Evidence) -> None:
    coded = [(path, enc) for path, enc, by_design in evidence.encodings if not by_design]
    clear = sorted({f"{path}: {enc}" for path, enc in coded if enc != ENCRYPTED})
    assert not clear, "payloads outside the codec:\n" + "\n".join(clear)
    kinds = {path for path, _ in coded}
    for wanted in (
        "events/workflowExecutionStartedEventAttributes/input/payloads",
        "events/activityTaskScheduledEventAttributes/input/payloads",
        "events/activityTaskCompletedEventAttributes/result/payloads",
        "events/workflowExecutionCompletedEventAttributes/result/payloads",
        "events/workflowExecutionUpdateCompletedEventAttributes/outcome/success/payloads",
    ):
        assert wanted in kinds, (wanted, sorted(kinds))


def test_no_secret_in_temporal_exports(secure_up: SecureUp, evidence: Evidence) -> None:
    needles = secret_needles(secure_up, evidence)
    # Search attributes, memo and ids are in clear: no card token, name, e-mail or phone.
    needles += [Needle.literal("card token", t) for t in evidence.card_tokens]
    needles += [
        Needle.literal("cardholder name", CARDHOLDER),
        Needle.literal("e-mail", EMAIL),
        Needle.literal("phone number", PHONE),
    ]
    hits = find(needles, evidence.temporal_views + evidence.databases)
    assert not hits, report(hits)


def test_no_clear_card_data_even_with_the_codec_keys(
    secure_up: SecureUp, evidence: Evidence
) -> None:
    """An operator who decrypts the payloads (the gateway's codec endpoints, the UI) still
    sees no PAN or CVV: the card entered Temporal as a JWE to Ayoconnect's key."""
    hits = find(secret_needles(secure_up, evidence), evidence.decrypted)
    assert not hits, report(hits)


def test_no_secret_in_logs(secure_up: SecureUp, evidence: Evidence) -> None:
    needles = secret_needles(secure_up, evidence)
    needles += [Needle.literal("card token", t) for t in evidence.card_tokens]
    hits = find(needles, evidence.logs)
    assert not hits, report(hits)


def test_no_secret_in_command_output_or_answers(secure_up: SecureUp, evidence: Evidence) -> None:
    """The CLI's own output, the REST answers and the Python API's answers (the card token
    is an answer there: the merchant stores it)."""
    hits = find(secret_needles(secure_up, evidence), evidence.outputs)
    assert not hits, report(hits)


def test_sandbox_ledger_keeps_no_clear_card(evidence: Evidence) -> None:
    """The local Ayoconnect keeps only the masked number (its README's promise)."""
    needles = [Needle.pan(name, pan) for name, pan in PANS.items()] + [Needle.cvv(CVV)]
    hits = find(needles, evidence.sandbox_db)
    assert not hits, report(hits)


def test_the_needles_find_what_they_look_for() -> None:
    """The patterns themselves: grouped PANs, CVV forms, base64 views."""
    texts = [
        ("plain", f"card {PAN_PAY} ok"),
        ("grouped", f"card {grouped(PAN_CLI)} ok"),
        ("dashed", "card " + "-".join(grouped(PAN_WEBVIEW).split()) + " ok"),
        ("json", json.dumps({"cardNumber": "x", "cvv": CVV})),
        ("form", f"cardNumber=1&cvv={CVV}&otp=123456"),
        ("urlencoded", f"%22cvv%22%3A%22{CVV}%22"),
    ]
    names = {hit.source for hit in find([Needle.pan(n, p) for n, p in PANS.items()], texts)}
    assert names == {"plain", "grouped", "dashed"}
    assert {hit.source for hit in find([Needle.cvv(CVV)], texts)} == {
        "json",
        "form",
        "urlencoded",
    }
    assert not find([Needle.cvv(CVV)], [("other", f"amount 1{CVV}00 and id {CVV}5")])
    assert not find([Needle.pan("p", PAN_PAY)], [("longer", "9" + PAN_PAY)])
    encoded = base64.b64encode(json.dumps({"pan": PAN_PAY}).encode()).decode()
    views = clear_views("export", {"payload": {"data": encoded}})
    assert find([Needle.pan("p", PAN_PAY)], views)
