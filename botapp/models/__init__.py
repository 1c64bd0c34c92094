"""Модели по доменам; каждый модуль — своя предметная область."""

from botapp.models.billing import (
    Account,
    Hold,
    Invoice,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PaymentMethod,
    PricingSettings,
    PromoCode,
    PromoRedemption,
    Referral,
    RefundDebt,
    StaffAuditLog,
    TokenPackage,
    TransactionKind,
    WelcomeClaim,
)
from botapp.models.catalog import GenerationModel, GenerationSettings
from botapp.models.errors import ErrorEvent, ErrorGroup
from botapp.models.generation import GenerationJob, JobOutput, JobStatus
from botapp.models.ops import PipelineProbe
from botapp.models.support import ChatLogEntry
from botapp.models.telegram import ConversationState, InboxUpdate
from botapp.models.users import Language, TelegramUser

__all__ = [
    "Account",
    "ChatLogEntry",
    "ConversationState",
    "ErrorEvent",
    "ErrorGroup",
    "GenerationJob",
    "GenerationModel",
    "GenerationSettings",
    "Hold",
    "InboxUpdate",
    "Invoice",
    "JobOutput",
    "JobStatus",
    "Language",
    "LedgerEntry",
    "LedgerTransaction",
    "Payment",
    "PaymentMethod",
    "PipelineProbe",
    "PricingSettings",
    "PromoCode",
    "PromoRedemption",
    "Referral",
    "RefundDebt",
    "StaffAuditLog",
    "TelegramUser",
    "TokenPackage",
    "TransactionKind",
    "WelcomeClaim",
]
