"""URL раздела «Поддержка»: входящие, диалог, действия (POST), файлы, привязка Telegram."""

from __future__ import annotations

from django.urls import path

from dashboard.views import support

urlpatterns = [
    path("", support.support_inbox, name="support"),
    path("link/", support.staff_link_page, name="staff_link"),
    path("file/<int:entry_id>/", support.support_media, name="support_media"),
    path("<int:thread_id>/", support.support_thread, name="support_thread"),
    path("<int:thread_id>/reply/", support.support_reply_view, name="support_reply"),
    path("<int:thread_id>/read/", support.support_read, name="support_read"),
    path("<int:thread_id>/resolve/", support.support_resolve, name="support_resolve"),
]
