"""Gemini/Veo: ключ или Vertex AI, базовый URL для локальных серверов, офлайн-провайдер."""

from __future__ import annotations

from config import env

GEMINI_API_KEY = env.GEMINI_API_KEY
GEMINI_API_BASE_URL = env.GEMINI_API_BASE_URL or "https://generativelanguage.googleapis.com"
USE_VERTEX_AI = env.USE_VERTEX_AI
GOOGLE_CLOUD_PROJECT = env.GOOGLE_CLOUD_PROJECT
GOOGLE_CLOUD_LOCATION = env.GOOGLE_CLOUD_LOCATION
GOOGLE_APPLICATION_CREDENTIALS = env.GOOGLE_APPLICATION_CREDENTIALS
GOOGLE_APPLICATION_CREDENTIALS_JSON = env.GOOGLE_APPLICATION_CREDENTIALS_JSON
# Без ключа локально работает офлайн-провайдер; в production это ошибка конфигурации
GEMINI_OFFLINE = env.GEMINI_OFFLINE or not (env.GEMINI_API_KEY or env.USE_VERTEX_AI)
