"""URL раздела «Пользователи»: поиск, карточка, действия (POST)."""

from __future__ import annotations

from django.urls import path

from dashboard.views import users

urlpatterns = [
    path("", users.user_list, name="users"),
    path("<int:user_id>/", users.user_detail, name="user"),
    path("<int:user_id>/adjust/", users.user_adjust, name="user_adjust"),
    path("<int:user_id>/ban/", users.user_ban, name="user_ban"),
    path("<int:user_id>/message/", users.user_message, name="user_message"),
]
