"""Платёжные адаптеры: Telegram Stars (через Bot API) и lava.top (HTTP)."""
