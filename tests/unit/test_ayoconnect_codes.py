"""Response codes: HTTP status + service code + case code."""

from __future__ import annotations

import pytest

from ayoconnect.codes import (
    DECLINE_CODES,
    RULE_VIOLATION_CASE,
    GatewayCode,
    ServiceCode,
    parse_response_code,
    response_code,
)


def test_documented_example() -> None:
    code = response_code(400, ServiceCode.CREATE_CHARGE, GatewayCode.INSUFFICIENT_FUNDS)
    assert code == "4005422"
    assert parse_response_code(code) == (400, "54", GatewayCode.INSUFFICIENT_FUNDS)


@pytest.mark.parametrize("status", [200, 201, 400, 401, 404, 409, 429, 500, 503, 504])
@pytest.mark.parametrize("service", list(ServiceCode))
def test_round_trip(status: int, service: ServiceCode) -> None:
    for case in GatewayCode:
        code = response_code(status, service, case)
        assert len(code) == 7
        assert code.isdigit()
        assert parse_response_code(code) == (status, service.value, case)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APPROVED", "01"),
        ("AUTHENTICATION_IN_PROGRESS", "05"),
        ("EXPIRED_CARD", "21"),
        ("INSUFFICIENT_FUNDS", "22"),
        ("INVALID_CSC", "23"),
        ("NOT_SUPPORTED", "26"),
        ("PENDING", "29"),
        ("SUBMITTED", "31"),
        ("TIMED_OUT", "33"),
        ("UNSPECIFIED_FAILURE", "35"),
    ],
)
def test_contract_case_codes(name: str, value: str) -> None:
    assert GatewayCode[name].value == value


def test_case_codes_are_alphabetical_and_unique() -> None:
    names = [g.name for g in GatewayCode]
    assert names == sorted(names)
    assert len({g.value for g in GatewayCode}) == len(names)


def test_decline_and_rule_sets() -> None:
    assert GatewayCode.INSUFFICIENT_FUNDS in DECLINE_CODES
    assert GatewayCode.DECLINED in DECLINE_CODES
    assert GatewayCode.TIMED_OUT not in DECLINE_CODES
    assert GatewayCode.APPROVED not in DECLINE_CODES
    assert RULE_VIOLATION_CASE is GatewayCode.NOT_SUPPORTED
    assert RULE_VIOLATION_CASE not in DECLINE_CODES


def test_unknown_case_parses_to_none() -> None:
    assert parse_response_code("4005499") == (400, "54", None)


@pytest.mark.parametrize("bad", ["", "400542", "40054222", "40054a2", "4005 22", "-400542"])
def test_bad_codes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="7 digits"):
        parse_response_code(bad)


@pytest.mark.parametrize(
    "bad",
    ["\u0664\u0660\u0660\u0665\u0664\u0662\u0662", "\uff14\uff10\uff10\uff15\uff14\uff12\uff12"],
    ids=["arabic-indic", "fullwidth"],
)
def test_non_ascii_digits_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="7 digits"):
        parse_response_code(bad)
