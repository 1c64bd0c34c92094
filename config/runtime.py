"""Роль текущего процесса, известная до загрузки настроек.

Пул соединений psycopg нужен ASGI-процессу (CONN_MAX_AGE=0 + пул), но опасен
в prefork-воркере Celery: пул, созданный до fork, делится сокетами с детьми.
Поэтому config/asgi.py помечает процесс до django.setup(), а настройки читают метку.
"""

_asgi = False


def mark_asgi() -> None:
    global _asgi
    _asgi = True


def is_asgi() -> bool:
    return _asgi
