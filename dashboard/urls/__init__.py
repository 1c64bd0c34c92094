"""Карта URL панели /dashboard/: вход и по модулю на раздел."""

from __future__ import annotations

from django.urls import include, path

from dashboard.views.auth import StaffLoginView, StaffLogoutView

app_name = "dashboard"

urlpatterns = [
    path("login/", StaffLoginView.as_view(), name="login"),
    path("logout/", StaffLogoutView.as_view(), name="logout"),
    path("", include("dashboard.urls.overview")),
    path("users/", include("dashboard.urls.users")),
    path("support/", include("dashboard.urls.support")),
    path("generations/", include("dashboard.urls.generations")),
    path("broadcasts/", include("dashboard.urls.broadcasts")),
    path("errors/", include("dashboard.urls.errors")),
]
