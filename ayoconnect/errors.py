"""The client's error tree, shaped for retry decisions (after httpx's own small tree).

    AyoconnectError
    ├── TransientError        the request did not take effect: retry with backoff
    ├── AmbiguousError        the request may have taken effect: look it up before resending
    ├── AuthenticationError   credentials refused even after a token refresh
    └── FinalError            Ayoconnect answered no: never retry the same request
        ├── DeclinedError         issuer or card said no (carries the gateway code)
        ├── RuleViolationError    not allowed in the payment's state (void after capture, ...)
        ├── NotFoundError         unknown payment, token or customer
        ├── ConflictError         same transactionId reused with another body
        └── InvalidRequestError   the request broke the contract

Every error carries the correlation id and transaction id of the call, never card data, tokens
or secrets: messages are built only from the provider's message and codes.
"""

from __future__ import annotations

from .codes import GatewayCode


class AyoconnectError(Exception):
    def __init__(
        self,
        message: str,
        *,
        correlation_id: str | None = None,
        transaction_id: str | None = None,
        http_status: int | None = None,
        response_code: str | None = None,
        gateway_code: GatewayCode | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.correlation_id = correlation_id
        self.transaction_id = transaction_id
        self.http_status = http_status
        self.response_code = response_code
        self.gateway_code = gateway_code
        self.operation = operation

    def __str__(self) -> str:
        parts = [self.message]
        if self.operation:
            parts.append(f"operation={self.operation}")
        if self.response_code:
            parts.append(f"responseCode={self.response_code}")
        if self.gateway_code is not None:
            parts.append(f"gatewayCode={self.gateway_code.name}")
        if self.transaction_id:
            parts.append(f"transactionId={self.transaction_id}")
        if self.correlation_id:
            parts.append(f"correlationId={self.correlation_id}")
        return " ".join(parts)


class TransientError(AyoconnectError):
    """Connection refused, 429, 5xx, TIMED_OUT: nothing happened, safe to retry."""


class AmbiguousError(AyoconnectError):
    """Read timeout or connection lost after the request was sent: it may have been applied."""


class AuthenticationError(AyoconnectError):
    """The client id, secret or merchant code is refused."""


class FinalError(AyoconnectError):
    """Ayoconnect answered and said no; the same request will get the same answer."""


class DeclinedError(FinalError):
    """The issuer or the card declined (insufficient funds, expired card, 3DS failed, ...)."""


class RuleViolationError(FinalError):
    """Not allowed in the payment's state: void after capture, second refund, capture > 120 %."""


class NotFoundError(FinalError):
    """Unknown payment, card token or customer."""


class ConflictError(FinalError):
    """The transactionId was already used with a different body."""


class InvalidRequestError(FinalError):
    """The request broke the contract (a field Ayoconnect refused)."""
