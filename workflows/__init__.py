"""Kartu's deterministic lifecycles. Import-safe: no I/O, nothing runs at import time.

The workflow classes load on first use (PEP 562): ``workflows.ids`` or ``workflows.models``
alone must not pull in every lifecycle, its activities and their settings. The ``kartu`` CLI
checks a payment id with ``workflows.ids`` before anything else; loading every workflow there
made each refused argument cost half a second of imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth_capture import AuthCapturePaymentWorkflow
    from .direct_payment import DirectPaymentWorkflow
    from .lookups import ProviderCardsLookupWorkflow, ProviderPaymentLookupWorkflow
    from .reconciliation import ReconciliationWorkflow
    from .refund import RefundWorkflow
    from .registration import CardRegistrationWorkflow
    from .review import PaymentReviewWorkflow
    from .unbind import CardUnbindWorkflow
    from .unmatched_callback import UnmatchedCallbackWorkflow

# Every workflow the worker registers, in registration order, with the module it lives in.
_WORKFLOW_MODULES = {
    "DirectPaymentWorkflow": "direct_payment",
    "AuthCapturePaymentWorkflow": "auth_capture",
    "CardRegistrationWorkflow": "registration",
    "RefundWorkflow": "refund",
    "CardUnbindWorkflow": "unbind",
    "ProviderPaymentLookupWorkflow": "lookups",
    "ProviderCardsLookupWorkflow": "lookups",
    "ReconciliationWorkflow": "reconciliation",
    "PaymentReviewWorkflow": "review",
    "UnmatchedCallbackWorkflow": "unmatched_callback",
}


def __getattr__(name: str) -> Any:
    if name == "ALL_WORKFLOWS":
        return [__getattr__(workflow) for workflow in _WORKFLOW_MODULES]
    module = _WORKFLOW_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'workflows' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


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
