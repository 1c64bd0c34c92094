"""Панель: миниатюры страницы генераций подписываются одним запросом к Supabase, а не по одному."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from PIL import Image

from botapp.models import JobOutput
from botapp.providers.storage import media_storage
from botapp.tests.admin.conftest import verified_client
from botapp.tests.billing.factories import user_fund, user_make
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support.fake_supabase import FakeSupabase

pytestmark = pytest.mark.django_db


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_page_of_thumbnails_is_signed_in_one_storage_request(supabase: FakeSupabase) -> None:
    user = user_make()
    user_fund(user, 100)
    for number in range(4):
        job = image_job_make(user, key=f"thumb-{number}", prompt=f"picture {number}")
        key = f"jobs/{job.pk}/0.png"
        if number < 3:  # у последнего объект уже стёрт сроком хранения — страница открывается без него
            media_storage().put(kind="image", key=key, data=_png(), content_type="image/png")
        JobOutput.objects.create(job=job, index=0, status="ok", storage_key=key)
    staff = verified_client(User.objects.create_user("ola", is_staff=True))
    signs_before = len(supabase.calls("POST"))

    page = staff.get("/dashboard/generations/").content.decode()

    signs = [r for r in supabase.calls("POST")[signs_before:] if "/object/sign/" in r.path]
    assert len(signs) == 1
    assert len(signs[0].json_body["paths"]) == 4
    assert page.count(f"{supabase.base_url}/storage/v1/object/sign/images/jobs/") == 3


def test_thumbnails_are_left_out_when_storage_is_down(supabase: FakeSupabase) -> None:
    user = user_make()
    user_fund(user, 100)
    job = image_job_make(user, key="thumb-down", prompt="a quiet harbour")
    JobOutput.objects.create(job=job, index=0, status="ok", storage_key=f"jobs/{job.pk}/0.png")
    staff = verified_client(User.objects.create_user("ivo", is_staff=True))
    supabase.fail_next(503, times=10)

    response = staff.get("/dashboard/generations/")

    assert response.status_code == 200
    assert "a quiet harbour" in response.content.decode()
    assert "/object/sign/" not in response.content.decode()
