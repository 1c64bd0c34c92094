"""Модели по доменам; каждый модуль — своя предметная область."""

from botapp.models.errors import ErrorEvent, ErrorGroup
from botapp.models.ops import PipelineProbe
from botapp.models.support import ChatLogEntry
from botapp.models.telegram import ConversationState, InboxUpdate
from botapp.models.users import Language, TelegramUser

__all__ = [
    "ChatLogEntry",
    "ConversationState",
    "ErrorEvent",
    "ErrorGroup",
    "InboxUpdate",
    "Language",
    "PipelineProbe",
    "TelegramUser",
]
