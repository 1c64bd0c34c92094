"""Модели по доменам; каждый модуль — своя предметная область."""

from botapp.models.ops import PipelineProbe

__all__ = ["PipelineProbe"]
