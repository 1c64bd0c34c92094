"""Оповещение операторов, когда провайдер упорно отвечает 429: одно на кулдаун, не раньше порога."""

from __future__ import annotations

import pytest

from botapp.generation.runner import provider_429_record
from botapp.models import GenerationSettings
from botapp.tests.ops.test_watchdog import _messages, notify_api  # noqa: F401 — общая фикстура
from botapp.tests.support.fakes import FakeBotApi

pytestmark = pytest.mark.django_db(transaction=True)


def test_persistent_429s_alert_the_operators_once_per_cooldown(notify_api: FakeBotApi) -> None:  # noqa: F811
    GenerationSettings.objects.update_or_create(pk=1, defaults={"provider_429_alert_threshold": 3})
    provider_429_record()
    provider_429_record()
    assert _messages(notify_api) == []  # ниже порога — тишина
    provider_429_record()
    [alert] = _messages(notify_api)
    assert "429" in alert
    assert "3 in 5 minutes" in alert
    for _ in range(3):
        provider_429_record()
    assert len(_messages(notify_api)) == 1  # кулдаун общий: без повторов


def test_a_zero_threshold_switches_the_alert_off(notify_api: FakeBotApi) -> None:  # noqa: F811
    GenerationSettings.objects.update_or_create(pk=1, defaults={"provider_429_alert_threshold": 0})
    for _ in range(5):
        provider_429_record()
    assert _messages(notify_api) == []
