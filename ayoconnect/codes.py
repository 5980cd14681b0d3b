"""Response codes: HTTP status (3) + service code (2) + case code (2), e.g. ``4005422``.

Case codes are Mastercard gateway codes numbered in alphabetical order (the contract's rule);
the service codes and the case codes for request errors are [chosen] in the contract.
"""

from __future__ import annotations

from enum import StrEnum


class ServiceCode(StrEnum):
    ACCESS_TOKEN = "00"  # [chosen]: the token endpoint has no documented service code
    GENERATE_WEBVIEW = "01"
    CARDS_LIST = "03"
    UNBIND = "04"
    CREATE_CHARGE = "54"
    PAYMENT_STATUS = "55"
    VOID = "57"
    REFUND = "58"


class GatewayCode(StrEnum):
    """Mastercard gateway codes; the value is the 2-digit case code."""

    ABORTED = "00"
    APPROVED = "01"
    APPROVED_AUTO = "02"
    APPROVED_PENDING_SETTLEMENT = "03"
    AUTHENTICATION_FAILED = "04"
    AUTHENTICATION_IN_PROGRESS = "05"
    BALANCE_AVAILABLE = "06"
    BALANCE_UNKNOWN = "07"
    BLOCKED = "08"
    CANCELLED = "09"
    DECLINED = "10"
    DECLINED_AVS = "11"
    DECLINED_AVS_CSC = "12"
    DECLINED_CSC = "13"
    DECLINED_DO_NOT_CONTACT = "14"
    DECLINED_INVALID_PIN = "15"
    DECLINED_PAYMENT_PLAN = "16"
    DECLINED_PIN_REQUIRED = "17"
    DEFERRED_TRANSACTION_RECEIVED = "18"
    DUPLICATE_BATCH = "19"
    EXCEEDED_RETRY_LIMIT = "20"
    EXPIRED_CARD = "21"
    INSUFFICIENT_FUNDS = "22"
    INVALID_CSC = "23"
    LOCK_FAILURE = "24"
    NOT_ENROLLED_3D_SECURE = "25"
    NOT_SUPPORTED = "26"
    NO_BALANCE = "27"
    PARTIALLY_APPROVED = "28"
    PENDING = "29"
    REFERRED = "30"
    SUBMITTED = "31"
    SYSTEM_ERROR = "32"
    TIMED_OUT = "33"
    UNKNOWN = "34"
    UNSPECIFIED_FAILURE = "35"


# Issuer or card said no: show the customer, never retry.
DECLINE_CODES: frozenset[GatewayCode] = frozenset(
    {
        GatewayCode.AUTHENTICATION_FAILED,
        GatewayCode.BLOCKED,
        GatewayCode.CANCELLED,
        GatewayCode.DECLINED,
        GatewayCode.DECLINED_AVS,
        GatewayCode.DECLINED_AVS_CSC,
        GatewayCode.DECLINED_CSC,
        GatewayCode.DECLINED_DO_NOT_CONTACT,
        GatewayCode.DECLINED_INVALID_PIN,
        GatewayCode.DECLINED_PAYMENT_PLAN,
        GatewayCode.DECLINED_PIN_REQUIRED,
        GatewayCode.EXPIRED_CARD,
        GatewayCode.INSUFFICIENT_FUNDS,
        GatewayCode.INVALID_CSC,
        GatewayCode.NOT_ENROLLED_3D_SECURE,
        GatewayCode.NO_BALANCE,
        GatewayCode.REFERRED,
    }
)

# [chosen] case codes for request errors, which have no gateway code of their own.
RULE_VIOLATION_CASE = GatewayCode.NOT_SUPPORTED  # HTTP 400: not allowed in the payment's state
INVALID_REQUEST_CASE = GatewayCode.UNSPECIFIED_FAILURE  # HTTP 400/401/404/409/415


def response_code(http_status: int, service: ServiceCode, case: GatewayCode) -> str:
    return f"{http_status:03d}{service.value}{case.value}"


def parse_response_code(code: str) -> tuple[int, str, GatewayCode | None]:
    """Split a 7-digit code into (HTTP status, service code, gateway code or None if unknown)."""
    if len(code) != 7 or not (code.isascii() and code.isdigit()):
        raise ValueError(f"responseCode must be 7 digits, got {len(code)} characters")
    case = code[5:]
    gateway = next((g for g in GatewayCode if g.value == case), None)
    return int(code[:3]), code[3:5], gateway
