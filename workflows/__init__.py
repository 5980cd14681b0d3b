"""Kartu's deterministic lifecycles. Import-safe: no I/O, nothing runs at import time."""

from .auth_capture import AuthCapturePaymentWorkflow
from .direct_payment import DirectPaymentWorkflow
from .lookups import ProviderCardsLookupWorkflow, ProviderPaymentLookupWorkflow
from .reconciliation import ReconciliationWorkflow
from .refund import RefundWorkflow
from .registration import CardRegistrationWorkflow
from .review import PaymentReviewWorkflow
from .unbind import CardUnbindWorkflow
from .unmatched_callback import UnmatchedCallbackWorkflow

ALL_WORKFLOWS = [
    DirectPaymentWorkflow,
    AuthCapturePaymentWorkflow,
    CardRegistrationWorkflow,
    RefundWorkflow,
    CardUnbindWorkflow,
    ProviderPaymentLookupWorkflow,
    ProviderCardsLookupWorkflow,
    ReconciliationWorkflow,
    PaymentReviewWorkflow,
    UnmatchedCallbackWorkflow,
]

__all__ = [
    "ALL_WORKFLOWS",
    "AuthCapturePaymentWorkflow",
    "CardRegistrationWorkflow",
    "CardUnbindWorkflow",
    "DirectPaymentWorkflow",
    "PaymentReviewWorkflow",
    "ProviderCardsLookupWorkflow",
    "ProviderPaymentLookupWorkflow",
    "ReconciliationWorkflow",
    "RefundWorkflow",
    "UnmatchedCallbackWorkflow",
]
