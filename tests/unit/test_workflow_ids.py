"""workflows.ids: workflow ids, transaction ids, correlation ids, callback routing."""

from __future__ import annotations

import pytest

from workflows import ids


@pytest.mark.parametrize("key", ["a", "A_1", "x" * 26, "order_2024_000123"])
def test_valid_keys(key):
    assert ids.validate_key(key) == key
    assert ids.payment_workflow_id(key) == f"payment-{key}"
    assert ids.registration_workflow_id(key) == f"registration-{key}"
    assert ids.refund_workflow_id(key) == f"refund-{key}"


@pytest.mark.parametrize("key", ["", "x" * 27, "has-dash", "space here", "ünï", "a.b", None])
def test_invalid_keys_say_why(key):
    with pytest.raises(ids.InvalidKeyError, match="1 to 26 characters"):
        ids.payment_workflow_id(key)


def test_invalid_key_error_is_a_value_error():
    assert issubclass(ids.InvalidKeyError, ValueError)


@pytest.mark.parametrize("step", list(ids.Step))
def test_every_step_fits_32_characters_for_the_longest_key(step):
    tid = ids.transaction_id("k" * 26, step)
    assert tid == "k" * 26 + "-" + step.value
    assert len(tid) <= 32


def test_attempt_steps():
    assert [ids.attempt_step("cap", n) for n in (1, 2, 9)] == ["cap", "cap2", "cap9"]
    for step in (ids.Step.CAPTURE, ids.Step.VOID, ids.Step.COMPENSATION_VOID):
        tid = ids.transaction_id("k" * 26, ids.attempt_step(step, ids.MAX_STEP_ATTEMPTS))
        assert len(tid) <= 32
    with pytest.raises(ValueError):
        ids.attempt_step("cap", ids.MAX_STEP_ATTEMPTS + 1)


def test_counted_steps():
    assert ids.status_step(1) == "s1"
    assert ids.list_step(12) == "l12"
    assert len(ids.transaction_id("k" * 26, ids.status_step(9999))) == 32
    with pytest.raises(ValueError):
        ids.status_step(0)
    with pytest.raises(ValueError):
        ids.status_step(10000)


def test_transaction_id_refuses_too_long_or_dashed_steps():
    with pytest.raises(ValueError):
        ids.transaction_id("k" * 26, "toolong")
    with pytest.raises(ValueError):
        ids.transaction_id("k", "a-b")


def test_correlation_id_is_stable_32_hex_per_flow():
    first = ids.correlation_id("payment-abc")
    assert first == ids.correlation_id("payment-abc")
    assert first != ids.correlation_id("payment-abd")
    assert len(first) == 32 and all(c in "0123456789abcdef" for c in first)
    assert ids.payment_correlation_id("abc") == first


def test_card_key_hides_the_token_and_fits():
    token = "A1" * 20
    key = ids.card_key(token)
    assert key == ids.card_key(token)
    assert len(key) == 26 and token not in key
    assert ids.validate_key(key) == key
    assert ids.unbind_workflow_id(token) == f"unbind-{ids.card_key(token)}"
    assert token not in ids.unbind_workflow_id(token)
    with pytest.raises(ids.InvalidKeyError):
        ids.unbind_workflow_id("not-a-token")


@pytest.mark.parametrize(
    ("tid", "workflow_id", "signal"),
    [
        ("abc_1-reg", "registration-abc_1", "binding_callback"),
        ("abc_1-pay", "payment-abc_1", "payment_callback"),
        ("abc_1-auth", "payment-abc_1", "payment_callback"),
    ],
)
def test_callback_routing(tid, workflow_id, signal):
    route = ids.parse_callback_transaction_id(tid)
    assert (route.workflow_id, route.signal) == (workflow_id, signal)
    assert route.key == "abc_1"


def test_callback_routing_round_trips_every_derived_id():
    for step, prefix in [(ids.Step.PAY, "payment-"), (ids.Step.REGISTER, "registration-")]:
        tid = ids.transaction_id("x" * 26, step)
        assert ids.parse_callback_transaction_id(tid).workflow_id == prefix + "x" * 26


@pytest.mark.parametrize("tid", ["", "nodash", "-pay", "abc-cap", "abc-s1", "a b-pay", "abc-"])
def test_unroutable_callbacks(tid):
    with pytest.raises(ids.UnroutableCallbackError):
        ids.parse_callback_transaction_id(tid)
