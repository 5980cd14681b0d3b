"""Bad input: exit 2 (or 1 for a refusal), ONE line on stderr naming the problem, no traceback,
nothing on stdout, and nothing started in Temporal. Every command here is the console script, a
process of its own (``Up.kartu_process``): its whole stderr is the point. Only the checks that
nothing started ask in this process (``Up.kartu``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_stack import Result, Up, base_env, new_id, run_kartu

from codec import load_or_create_local_keys

TOKEN = "A" * 40
CUSTOMER = "CUST0000000001"


def assert_one_line_error(result: Result, code: int, *words: str) -> None:
    assert result.code == code, (result.code, result.err)
    assert result.out == ""
    assert result.err.endswith("\n")
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    assert result.err.startswith("kartu")
    for word in words:
        assert word in result.err, (word, result.err)


def pay(payment: str, *, amount: str = "150000", token: str = TOKEN) -> list[str]:
    return ["pay", payment, "--customer", CUSTOMER, "--amount", amount, "--card-token", token]


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("1.234", ["--amount", "two decimal places"]),
        ("1e5", ["--amount", "not an amount"]),
        ("150000.0.0", ["--amount", "not an amount"]),
        ("1,000", ["--amount", "not an amount"]),
        ("nan", ["--amount", "not an amount"]),
        ("-5", ["--amount", "not an amount"]),
        ("0", ["--amount", "greater than 0"]),
        ("1000000000000", ["--amount", "at most"]),
    ],
)
def test_bad_amounts_start_nothing(kartu_up: Up, amount: str, words: list[str]) -> None:
    payment = new_id("bad")
    assert_one_line_error(kartu_up.kartu_process(*pay(payment, amount=amount)), 2, *words)
    # Nothing started: asked in this process (the refused command's own process is the point).
    assert_one_line_error(kartu_up.kartu("status", payment), 1, f"no payment {payment}")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["status"], ["required", "PAYMENT_ID"]),
        (["capture"], ["required", "PAYMENT_ID"]),
        (["status", "pay-1!"], ["PAYMENT_ID", "'pay-1!' is not a payment id"]),
        (["void", "x" * 27], ["PAYMENT_ID", "1 to 26 letters"]),
        (["refund", "bad id"], ["not a payment id"]),
        ([*pay("ok_1"), "--bogus"], ["unrecognized arguments: --bogus"]),
        (["frobnicate"], ["invalid choice", "frobnicate"]),
        (pay("ok_2", token="short"), ["--card-token", "40 letters or digits"]),
        (
            ["pay", "ok_3", "--customer", "c-1", "--amount", "1", "--card-token", TOKEN],
            ["customer"],
        ),
        (["payments", "--expiring-before", "2026-01-31T00:00:00"], ["time zone"]),
        (["payments", "--status", "LOST"], ["not a payment status"]),
        (["up", "--temporal-port", "99999"], ["--temporal-port", "not a port"]),
        (["sandbox", "3ds", "http://127.0.0.1:1/3ds/x", "--otp", "abc"], ["OTP"]),
        (["sandbox", "card", "not-a-url", "--card", "4111111111111111"], ["URL"]),
        (["status", "--wait", "soon", "p_1"], ["--wait", "not a duration"]),
        (["resolve", "p_1", "close"], ["close needs --status"]),
        (["resolve", "p_1", "close", "--status", "REFUNDED", "--force"], ["--force needs --note"]),
        (["resolve", "p_1", "retry", "--force", "--note", "x"], ["--status and --force"]),
        (["resolve", "p_1", "undo"], ["invalid choice", "undo"]),
        (["resolve", "p_1", "close", "--status", "PENDING"], ["close status must be one"]),
    ],
)
def test_usage_errors_in_one_line(kartu_up: Up, args: list[str], words: list[str]) -> None:
    assert_one_line_error(kartu_up.kartu_process(*args), 2, *words)


def test_card_token_is_not_echoed(kartu_up: Up) -> None:
    secret_ish = "S3cr3t" * 5
    result = kartu_up.kartu_process(*pay("ok_4", token=secret_ish))
    assert_one_line_error(result, 2, "--card-token")
    assert secret_ish not in result.err


def test_missing_redirect_url_is_reported_before_anything_starts(kartu_up: Up) -> None:
    env = {k: v for k, v in kartu_up.env.items() if k != "KARTU_REDIRECT_URL"}
    payment = new_id("noredir")
    result = run_kartu(*pay(payment), env=env, cwd=kartu_up.data_dir.parent)
    assert_one_line_error(result, 2, "--redirect-url", "KARTU_REDIRECT_URL")
    assert_one_line_error(kartu_up.kartu("status", payment), 1, "no payment")
    # Checked before connecting: the same answer with no Temporal at all.
    env["TEMPORAL_ADDRESS"] = "127.0.0.1:1"
    result = run_kartu(*pay(payment), env=env, cwd=kartu_up.data_dir.parent)
    assert_one_line_error(result, 2, "--redirect-url")
    result = run_kartu("status", payment, "--until", "PAID", env=env, cwd=kartu_up.data_dir)
    assert_one_line_error(result, 2, "--until needs --wait")


def test_refusals_and_unknown_payments_exit_1(kartu_up: Up) -> None:
    unknown = new_id("nope")
    assert_one_line_error(kartu_up.kartu_process("status", unknown), 1, f"no payment {unknown}")
    assert_one_line_error(kartu_up.kartu_process("capture", unknown), 1, "no payment")
    assert_one_line_error(kartu_up.kartu_process("void", unknown), 1, "no payment")
    assert_one_line_error(kartu_up.kartu_process("registration", unknown), 1, "no registration")
    assert_one_line_error(kartu_up.kartu_process("status", unknown, "--provider"), 1, "no payment")
    assert_one_line_error(kartu_up.kartu_process("resolve", unknown, "retry"), 1, "no payment")
    refund_retry = kartu_up.kartu_process("resolve", unknown, "retry", "--refund")
    assert_one_line_error(refund_retry, 1, "no refund")
    # A valid-looking payment with a card token nobody bound: the provider refuses it.
    result = kartu_up.kartu_process(*pay(new_id("unbound")), "--json")
    assert result.code == 0, result.err
    assert '"status": "FAILED"' in result.out or '"status": "DECLINED"' in result.out


def test_unreachable_temporal_is_one_line(tmp_path: Path) -> None:
    keys = tmp_path / "codec.keys"
    load_or_create_local_keys(keys)
    env = base_env(TEMPORAL_ADDRESS="127.0.0.1:1", KARTU_CODEC_KEYS_FILE=str(keys))
    result = run_kartu("status", "p_1", env=env, cwd=tmp_path)
    assert_one_line_error(result, 1, "cannot reach Temporal at 127.0.0.1:1", "kartu up")
    assert "codec" not in result.err


def test_missing_codec_keys_are_a_setting_not_an_unreachable_server(tmp_path: Path) -> None:
    # No keys and no `kartu up` in this folder: the CLI says which settings it lacks before it
    # tries to connect, and creates no key of its own.
    env = base_env(TEMPORAL_ADDRESS="127.0.0.1:1")
    for name in ("KARTU_CODEC_KEYS", "KARTU_CODEC_KEYS_FILE", "KARTU_CODEC_DISABLED"):
        env.pop(name, None)
    result = run_kartu("status", "p_1", env=env, cwd=tmp_path)
    assert_one_line_error(
        result, 2, "no payload codec keys: set KARTU_CODEC_KEYS or KARTU_CODEC_KEYS_FILE"
    )
    assert "cannot reach" not in result.err
    assert not (tmp_path / ".kartu").exists()


def test_unreachable_sandbox_is_one_line(tmp_path: Path) -> None:
    env = base_env(KARTU_SANDBOX_URL="http://127.0.0.1:1")
    result = run_kartu("sandbox", "clock", env=env, cwd=tmp_path)
    assert_one_line_error(result, 1, "cannot reach http://127.0.0.1:1")


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_kartu("--help", env=base_env(), cwd=tmp_path)
    assert result.code == 0
    for command in ("register", "pay", "authorize", "capture", "void", "refund", "unbind"):
        assert command in result.out
    for command in ("status", "cards", "payments", "resolve", "demo", "up", "sandbox"):
        assert command in result.out
