"""Маршруты песочницы; проект подключает их под /sandbox/ только при TELEGRAM_SANDBOX.

/sandbox/api/… — эмулятор Bot API; /sandbox/ — веб-чат с ботом.
"""

from django.urls import path, re_path

from botapp.sandbox import chat, views

app_name = "sandbox"

urlpatterns = [
    re_path(r"^api/bot(?P<token>[^/]+)/(?P<method>[A-Za-z0-9_]+)/?$", views.bot_method, name="api-method"),
    re_path(r"^api/file/bot(?P<token>[^/]+)/(?P<file_path>.+)$", views.file_download, name="api-file"),
    re_path(r"^api/", views.api_not_found, name="api-not-found"),
    path("", chat.chat_page, name="chat"),
    path("chat/users", chat.chat_users, name="chat-users"),
    path("chat/<int:chat_id>/state", chat.chat_state, name="chat-state"),
    path("chat/<int:chat_id>/send", chat.chat_send, name="chat-send"),
    path("chat/<int:chat_id>/press", chat.chat_press, name="chat-press"),
    path("chat/<int:chat_id>/pay", chat.chat_pay, name="chat-pay"),
    path("chat/<int:chat_id>/block", chat.chat_block, name="chat-block"),
    path("chat/file/<str:file_id>", chat.chat_file, name="chat-file"),
]
