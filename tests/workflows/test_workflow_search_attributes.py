"""Search attributes: a payment KartuClient starts carries them from its start, so its first
workflow task upserts only what differs (one history event and one visibility write less per
payment); a payment started without them upserts them all, as before. Both replay."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from workflow_fakes import CARD_TOKEN
from workflow_helpers import CUSTOMER, finish, payment_input, start_payment

from starter.client import KartuClient
from worker import workflow_runner
from workflows import ALL_WORKFLOWS, policies
from workflows import search_attributes as sa
from workflows.ids import payment_workflow_id
from workflows.models import PaymentState, PaymentStatus

UPSERT = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES


async def upserts_and_replay(env, workflow_id: str) -> int:
    handle = env.client.get_workflow_handle(workflow_id, result_type=PaymentState)
    await finish(env, handle)
    history = await handle.fetch_history()
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None
    return sum(1 for event in history.events if event.event_type == UPSERT)


async def test_a_payment_started_with_its_attributes_upserts_only_what_changes(
    env, task_queue, key
):
    kartu = KartuClient(env.client, task_queue=task_queue, outcome_timeout=15)
    outcome = await kartu.pay(
        key,
        customer_id=CUSTOMER,
        amount="150000.00",
        card_token=CARD_TOKEN,
        redirect_url="https://merchant.test/return",
    )
    assert outcome.status is PaymentStatus.PAID

    assert await upserts_and_replay(env, payment_workflow_id(key)) == 1  # PAID (and invoice)
    described = await env.client.get_workflow_handle(payment_workflow_id(key)).describe()
    attributes = described.typed_search_attributes
    assert attributes.get(sa.PAYMENT_STATUS) == "PAID"
    assert attributes.get(sa.FLOW) == "DIRECT" and attributes.get(sa.CUSTOMER_ID) == CUSTOMER
    assert attributes.get(sa.AMOUNT) == 150000 and attributes.get(sa.INVOICE_NUMBER)
    # A workflow task a dead worker had started goes to another after 5 s, not Temporal's 10.
    config = described.raw_description.execution_config
    assert config.default_workflow_task_timeout.ToTimedelta() == policies.WORKFLOW_TASK_TIMEOUT


async def test_a_payment_started_without_them_upserts_them_all(env, task_queue, key):
    # Another starter (the temporal CLI, a payment from before the change): no attributes at
    # start, no flag: the first task upserts them, as every payment did before.
    _, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert await upserts_and_replay(env, handle.id) == 2
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.PAYMENT_STATUS) == "PAID"
    assert described.typed_search_attributes.get(sa.CUSTOMER_ID) == CUSTOMER
