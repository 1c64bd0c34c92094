"""Песочница: локальный эмулятор Bot API и веб-чат (только в режиме TELEGRAM_SANDBOX, не в production)."""
