"""Клавиатуры. Подписи главного меню — из каталогов переводов (ARCHITECTURE §7)."""

from __future__ import annotations

import functools

from django.utils import translation
from django.utils.translation import gettext as _
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup

from botapp.models import TelegramUser, TokenPackage
from botapp.telegram.formatting import tokens

VS16 = "\ufe0f"  # селектор варианта эмодзи: клиенты то ставят его, то нет


def menu_labels() -> dict[str, str]:
    """Ключ пункта → подпись на активном языке."""
    return {
        "image": _("🎨 Image"),
        "video": _("🎬 Video"),
        "balance": _("💰 Balance"),
        "topup": _("⭐ Top up"),
        "gallery": _("🖼 My works"),
        "settings": _("⚙️ Settings"),
        "support": _("🆘 Support"),
    }


def normalize_label(text: str) -> str:
    return text.replace(VS16, "").strip()


@functools.cache
def _all_labels() -> dict[str, str]:
    """Подпись (любой язык, без VS16) → ключ пункта: кнопку могли нажать до смены языка.

    Раз на процесс: каталоги переводов после запуска не меняются, а спрашивают это на каждый текст.
    """
    mapping: dict[str, str] = {}
    for language in ("ru", "en"):
        with translation.override(language):
            mapping.update({normalize_label(label): key for key, label in menu_labels().items()})
    return mapping


def menu_key(text: str) -> str | None:
    return _all_labels().get(normalize_label(text))


def main_menu() -> ReplyKeyboardMarkup:
    labels = menu_labels()
    rows = [
        [labels["image"], labels["video"]],
        [labels["balance"], labels["topup"]],
        [labels["gallery"], labels["settings"]],
        [labels["support"]],
    ]
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, is_persistent=True)


def _mark(flag: bool) -> str:
    return "✅" if flag else "▫️"


def settings_keyboard(user: TelegramUser, model_name: str = "") -> InlineKeyboardMarkup:
    language = user.effective_language
    rows = [
        [
            InlineKeyboardButton(f"{_mark(language == 'ru')} Русский", callback_data="set:lang:ru"),
            InlineKeyboardButton(f"{_mark(language == 'en')} English", callback_data="set:lang:en"),
        ],
        [
            InlineKeyboardButton(
                f"{_mark(user.send_originals_as_files)} " + _("Send originals as files"),
                callback_data="set:toggle:send_originals_as_files",
            )
        ],
        [
            InlineKeyboardButton(
                f"{_mark(user.skip_confirmation)} " + _("Skip the confirmation card"),
                callback_data="set:toggle:skip_confirmation",
            )
        ],
    ]
    if model_name:
        rows += [
            [
                InlineKeyboardButton(
                    _("Model: {model} ▸").format(model=model_name), callback_data="set:cycle:model"
                )
            ],
            [
                InlineKeyboardButton(
                    _("Ratio: {ratio} ▸").format(ratio=user.default_aspect_ratio),
                    callback_data="set:cycle:ratio",
                ),
                InlineKeyboardButton(
                    _("Images: {count} ▸").format(count=user.default_outputs), callback_data="set:cycle:count"
                ),
            ],
        ]
    return InlineKeyboardMarkup(rows)


def delete_confirm_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(_("Yes, delete my data"), callback_data="del:yes"),
                InlineKeyboardButton(_("No, keep it"), callback_data="del:no"),
            ]
        ]
    )


def balance_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(_("⭐ Top up"), callback_data="top:menu")],
            [
                InlineKeyboardButton(_("🎟 Promo code"), callback_data="bal:promo"),
                InlineKeyboardButton(_("📜 History"), callback_data="bal:hist:0"),
            ],
        ]
    )


def history_keyboard(*, page: int, has_next: bool) -> InlineKeyboardMarkup | None:
    row = []
    if page > 0:
        row.append(InlineKeyboardButton(_("◀️ Newer"), callback_data=f"bal:hist:{page - 1}"))
    if has_next:
        row.append(InlineKeyboardButton(_("Older ▶️"), callback_data=f"bal:hist:{page + 1}"))
    return InlineKeyboardMarkup([row]) if row else None


def packages_keyboard(
    packages: list[TokenPackage], language: str, card_offers: dict[int, list[tuple[str, str]]]
) -> InlineKeyboardMarkup:
    """По строке на пакет: звёзды; под ним — оплата картой, если она предлагается."""
    rows = []
    for package in packages:
        title = package.title_ru if language == "ru" else package.title_en
        label = _("{title} · {tokens} · {stars} ⭐").format(
            title=title, tokens=tokens(package.total_tokens), stars=package.stars
        )
        if package.bonus_percent:
            label += f" (+{package.bonus_percent}%)"
        rows.append([InlineKeyboardButton(label, callback_data=f"top:stars:{package.pk}")])
        cards = [
            InlineKeyboardButton(f"💳 {price} {currency}", callback_data=f"lava:{package.pk}:{currency}")
            for currency, price in card_offers.get(package.pk, [])
        ]
        if cards:
            rows.append(cards)
    return InlineKeyboardMarkup(rows)
