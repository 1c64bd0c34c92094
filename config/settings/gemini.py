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

# Задания генерации (ARCHITECTURE §4 «Image job», «Video job»)
GENERATION_IMAGE_DEADLINE_S = 600  # после — просрочено, холд возвращается
GENERATION_VIDEO_DEADLINE_S = 1800
GENERATION_LEASE_S = env.GENERATION_LEASE_S  # аренда задания воркером; тесты ставят секунды
# Аренда доставки: отправляет только её держатель (сборщик не шлёт второй экземпляр, пока идёт
# отправка); продлевается между вызовами Bot API. Умерший доставщик подменяется через столько секунд
DELIVERY_LEASE_S = min(env.GENERATION_LEASE_S, 120)
# Сколько доставка пытается после готовности результата (сеть, 413 «файл велик», сборщик публикует её
# снова): потом доставленное списывается, а если нет ничего — возврат и извинение
DELIVERY_GIVE_UP_S = 3600
GENERATION_CALL_TIMEOUT_S = 120  # один вызов провайдера
GENERATION_RETRY_BASE_S = 2.0  # экспоненциальная пауза с джиттером между попытками
GENERATION_MAX_ATTEMPTS = 6
GENERATION_MAX_IN_FLIGHT_PER_USER = env.GENERATION_MAX_IN_FLIGHT_PER_USER
GENERATION_QUEUE_REPUBLISH_S = 120  # задание в очереди дольше — сообщение брокера считается потерянным
VIDEO_POLL_INTERVAL_S = env.VIDEO_POLL_INTERVAL_S
JOB_SWEEP_INTERVAL_S = 30
GEMINI_OFFLINE_LATENCY_S = env.GEMINI_OFFLINE_LATENCY_S
