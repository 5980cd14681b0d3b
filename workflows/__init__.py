"""Kartu's deterministic lifecycles. Import-safe: no I/O, nothing runs at import time."""

from .auth_capture import AuthCapturePaymentWorkflow
from .direct_payment import DirectPaymentWorkflow
from .refund import RefundWorkflow
from .registration import CardRegistrationWorkflow
from .unbind import CardUnbindWorkflow

ALL_WORKFLOWS = [
    DirectPaymentWorkflow,
    AuthCapturePaymentWorkflow,
    CardRegistrationWorkflow,
    RefundWorkflow,
    CardUnbindWorkflow,
]

__all__ = [
    "ALL_WORKFLOWS",
    "AuthCapturePaymentWorkflow",
    "CardRegistrationWorkflow",
    "CardUnbindWorkflow",
    "DirectPaymentWorkflow",
    "RefundWorkflow",
]
