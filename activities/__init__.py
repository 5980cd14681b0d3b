"""Temporal activities: one per Ayoconnect operation, plus the merchant confirmation."""

from .ayoconnect_activities import AyoconnectActivities
from .calls import (
    CardsListCall,
    ChargeCall,
    MerchantConfirmation,
    MerchantConfirmationResult,
    RefundCall,
    StatusCall,
    UnbindCall,
    VoidCall,
    WebviewCall,
)
from .errors import error_details, to_application_error

__all__ = [
    "AyoconnectActivities",
    "CardsListCall",
    "ChargeCall",
    "MerchantConfirmation",
    "MerchantConfirmationResult",
    "RefundCall",
    "StatusCall",
    "UnbindCall",
    "VoidCall",
    "WebviewCall",
    "error_details",
    "to_application_error",
]
