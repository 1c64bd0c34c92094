"""Деньги: счета, журнал проводок, холды, пакеты, счета на оплату и платежи, промокоды, рефералы.

Журнал только дописывается. Каждое движение — одна проводка (LedgerTransaction) с уникальным
ключом идемпотентности и строками (LedgerEntry) по счетам; сумма строк проводки равна нулю,
поэтому и сумма всего журнала — ноль. Остатки пользователя кэшируются на его счёте в той же
транзакции; CHECK не даёт им уйти в минус. Системные счета (продажи, расход, промо, корректировки)
могут быть отрицательными: это «источники» и «стоки» токенов.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from botapp.models.users import TelegramUser


class Account(models.Model):
    class Kind(models.TextChoices):
        USER = "user", "пользователь"
        SYSTEM = "system", "системный"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    user = models.OneToOneField(
        TelegramUser, null=True, blank=True, on_delete=models.PROTECT, related_name="account"
    )
    code = models.CharField(max_length=32, blank=True, help_text="имя системного счёта")
    available = models.BigIntegerField(default=0)
    on_hold = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "счёт"
        verbose_name_plural = "счета"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="system") | (Q(available__gte=0) & Q(on_hold__gte=0)),
                name="account_user_balance_non_negative",
            ),
            models.CheckConstraint(
                condition=(Q(kind="user") & Q(user__isnull=False) & Q(code=""))
                | (Q(kind="system") & Q(user__isnull=True) & ~Q(code="")),
                name="account_kind_owner",
            ),
            models.UniqueConstraint(
                fields=["code"], condition=~Q(code=""), name="account_system_code_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.code or f"user:{self.user_id}"


class TransactionKind(models.TextChoices):
    WELCOME_BONUS = "welcome_bonus", "приветственный бонус"
    PURCHASE = "purchase", "покупка"
    HOLD = "hold", "холд"
    CAPTURE = "capture", "списание"
    RELEASE = "release", "возврат холда"
    PAYMENT_REFUND = "payment_refund", "возврат платежа"
    REFUND_REVERSAL = "refund_reversal", "отмена возврата платежа"
    PROMO = "promo", "промокод"
    REFERRAL_REWARD = "referral_reward", "реферальная награда"
    REFERRAL_REVERSAL = "referral_reversal", "отмена реферальной награды"
    ADJUSTMENT = "adjustment", "корректировка"
    CHARGEBACK = "chargeback", "чарджбэк"


class LedgerTransaction(models.Model):
    """Одно движение токенов. Ключ идемпотентности уникален: повтор не создаёт вторую проводку."""

    idempotency_key = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=24, choices=TransactionKind.choices)
    user = models.ForeignKey(
        TelegramUser, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transactions"
    )
    # Что вызвало движение: платёж, погашение промокода, холд/задание генерации…
    # Метка модели строкой, а не FK на ContentType: id типов не переживают пересоздание БД
    reference_type = models.CharField(max_length=48, blank=True, help_text="app_label.model")
    reference_id = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "проводка"
        verbose_name_plural = "проводки"
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["reference_type", "reference_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.idempotency_key}"


class LedgerEntry(models.Model):
    """Строка проводки: изменение одной «корзины» (доступно / в холде) одного счёта."""

    class Bucket(models.TextChoices):
        AVAILABLE = "available", "доступно"
        ON_HOLD = "on_hold", "в холде"

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    bucket = models.CharField(max_length=10, choices=Bucket.choices)
    amount = models.BigIntegerField()
    # Системные счета не кэшируют остаток (иначе их строка — общая точка блокировки)
    balance_after = models.BigIntegerField(null=True, blank=True, help_text="остаток корзины после строки")

    class Meta:
        verbose_name = "строка проводки"
        verbose_name_plural = "строки проводок"
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_amount_nonzero")]
        indexes = [models.Index(fields=["account", "bucket"])]

    def __str__(self) -> str:
        return f"{self.account} {self.bucket} {self.amount:+d}"


class Hold(models.Model):
    """Токены, заблокированные под задание. Урегулируется ровно один раз: списание + возврат остатка."""

    class Status(models.TextChoices):
        ACTIVE = "active", "активен"
        CAPTURED = "captured", "списан"
        RELEASED = "released", "возвращён"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    amount = models.PositiveBigIntegerField()
    idempotency_key = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    captured_amount = models.PositiveBigIntegerField(default=0)
    reason = models.CharField(max_length=200, blank=True)
    reference_type = models.CharField(max_length=48, blank=True, help_text="app_label.model")
    reference_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "холд"
        verbose_name_plural = "холды"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(captured_amount__lte=F("amount")), name="hold_capture_le_amount"
            ),
            models.CheckConstraint(
                condition=Q(status="active", settled_at__isnull=True, captured_amount=0)
                | (~Q(status="active") & Q(settled_at__isnull=False)),
                name="hold_settlement_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"hold #{self.pk} {self.amount} ({self.status})"


class RefundDebt(models.Model):
    """Токены, которые пользователь должен после возврата денег: в момент возврата их не было в доступном.

    Долг гасится из токенов, которые возвращаются пользователю из холдов (ledger._settle), — в той же
    транзакции, что и возврат холда; иначе зарезервированные под задание токены после неудачи задания
    остались бы у пользователя вместе с деньгами. repaid растёт только условным UPDATE, CHECK не даёт
    погасить больше долга.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="refund_debts")
    # Одна запись на причину (возврат платежа, отмена награды): повтор события долг не удваивает
    idempotency_key = models.CharField(max_length=128, unique=True)
    kind = models.CharField(
        max_length=24, choices=TransactionKind.choices, help_text="вид проводок погашения"
    )
    destination = models.CharField(max_length=32, help_text="системный счёт, куда уходит погашение")
    reference_type = models.CharField(max_length=48, blank=True, help_text="app_label.model")
    reference_id = models.CharField(max_length=64, blank=True)
    amount = models.PositiveBigIntegerField(help_text="сколько токенов не удалось забрать")
    reserved = models.PositiveBigIntegerField(
        default=0, help_text="из них в момент возврата были в резерве под идущие задания"
    )
    repaid = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    repaid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "долг по возврату"
        verbose_name_plural = "долги по возвратам"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_debt_amount_positive"),
            models.CheckConstraint(condition=Q(reserved__lte=F("amount")), name="refund_debt_reserved_le"),
            models.CheckConstraint(condition=Q(repaid__lte=F("amount")), name="refund_debt_repaid_le_amount"),
            models.CheckConstraint(
                condition=Q(repaid=F("amount"), repaid_at__isnull=False)
                | (Q(repaid__lt=F("amount")) & Q(repaid_at__isnull=True)),
                name="refund_debt_repaid_consistent",
            ),
        ]
        indexes = [
            # Возврат холда проверяет «есть ли долг» на каждом задании: индекс только по непогашенным
            models.Index(fields=["account"], condition=Q(repaid_at__isnull=True), name="refund_debt_open"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.repaid}/{self.amount}"

    @property
    def outstanding(self) -> int:
        return self.amount - self.repaid


class PricingSettings(models.Model):
    """Коэффициенты цен и бонусов; одна строка (pk=1), правится в админке."""

    tokens_per_usd = models.DecimalField(max_digits=10, decimal_places=2, default=100)
    markup = models.DecimalField(max_digits=6, decimal_places=3, default=2)
    stars_usd_rate = models.DecimalField(
        max_digits=8, decimal_places=5, default="0.013", help_text="USD за одну звезду (для отчётов)"
    )
    welcome_bonus = models.PositiveIntegerField(default=20)
    referral_inviter_reward = models.PositiveIntegerField(default=30)
    referral_invitee_reward = models.PositiveIntegerField(default=20)
    # Курсор сверки звёзд (сколько транзакций getStarTransactions уже разобрано). Не настройка, но
    # должен переживать рестарты и вытеснение из кэша, а единственная строка денег уже есть здесь
    stars_reconciled_offset = models.PositiveBigIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "настройки цен"
        verbose_name_plural = "настройки цен"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="pricing_settings_singleton"),
            models.CheckConstraint(
                condition=Q(tokens_per_usd__gt=0) & Q(markup__gt=0), name="pricing_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tokens_per_usd} ток./$ × {self.markup}"


class TokenPackage(models.Model):
    """Пакет токенов за звёзды (и за карту через lava.top — по offerId на валюту)."""

    title_ru = models.CharField(max_length=32)
    title_en = models.CharField(max_length=32)
    stars = models.PositiveIntegerField(help_text="цена в звёздах (XTR)")
    tokens = models.PositiveIntegerField()
    bonus_percent = models.PositiveSmallIntegerField(default=0)
    lava_offers = models.JSONField(
        default=dict, blank=True, help_text='offerId lava.top по валютам: {"RUB": "…", "USD": "…"}'
    )
    lava_prices = models.JSONField(
        default=dict, blank=True, help_text='цена по валютам lava.top, в единицах валюты: {"RUB": "199.00"}'
    )
    is_enabled = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "пакет токенов"
        verbose_name_plural = "пакеты токенов"
        ordering = ["order", "stars"]
        constraints = [
            models.CheckConstraint(condition=Q(stars__gt=0) & Q(tokens__gt=0), name="package_positive"),
            models.CheckConstraint(condition=Q(stars__lte=25000), name="package_stars_max"),
        ]

    def __str__(self) -> str:
        return f"{self.title_ru} · {self.stars}⭐ → {self.total_tokens}"

    @property
    def total_tokens(self) -> int:
        return self.tokens + self.tokens * self.bonus_percent // 100


class PaymentMethod(models.TextChoices):
    STARS = "stars", "Telegram Stars"
    LAVA = "lava", "lava.top"


class Invoice(models.Model):
    """Выставленный счёт: что и за сколько мы предложили. Платёж сверяется с ним, а не с входящими данными."""

    class Status(models.TextChoices):
        OPEN = "open", "ожидает оплаты"
        PAID = "paid", "оплачен"
        FAILED = "failed", "не оплачен"

    method = models.CharField(max_length=8, choices=PaymentMethod.choices)
    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="invoices")
    package = models.ForeignKey(TokenPackage, on_delete=models.PROTECT, related_name="invoices")
    nonce = models.CharField(max_length=32, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="звёзды или сумма в валюте")
    currency = models.CharField(max_length=3)
    tokens = models.PositiveIntegerField(help_text="сколько токенов обещано")
    external_id = models.CharField(max_length=64, blank=True, help_text="id счёта у lava.top")
    payment_url = models.URLField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    polled_at = models.DateTimeField(
        null=True, blank=True, help_text="когда опрос lava последний раз перечитал счёт (очередь опроса)"
    )

    class Meta:
        verbose_name = "счёт на оплату"
        verbose_name_plural = "счета на оплату"
        constraints = [
            models.UniqueConstraint(
                fields=["method", "external_id"], condition=~Q(external_id=""), name="invoice_external_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.nonce}"


class Payment(models.Model):
    """Полученный платёж. (method, external_id) уникальны: один платёж — одно зачисление."""

    class Status(models.TextChoices):
        PAID = "paid", "оплачен"
        REFUND_PENDING = "refund_pending", "возврат в процессе"
        REFUNDED = "refunded", "возвращён"

    method = models.CharField(max_length=8, choices=PaymentMethod.choices)
    external_id = models.CharField(
        max_length=128, help_text="telegram_payment_charge_id или contract id lava"
    )
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="payments")
    package = models.ForeignKey(TokenPackage, null=True, blank=True, on_delete=models.PROTECT)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    tokens = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PAID, db_index=True)
    refund_attempts = models.PositiveSmallIntegerField(default=0)
    refund_shortfall = models.PositiveIntegerField(
        default=0,
        help_text="сколько токенов не удалось забрать при внешнем возврате: записаны долгом (RefundDebt)",
    )
    note = models.CharField(max_length=300, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "платёж"
        verbose_name_plural = "платежи"
        constraints = [
            models.UniqueConstraint(fields=["method", "external_id"], name="payment_external_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.amount} {self.currency} → {self.tokens}"


class PromoCode(models.Model):
    """Промокод: фиксированная сумма, общий лимит, один раз на пользователя, окно действия."""

    code = models.CharField(
        max_length=32,
        unique=True,
        help_text="буквы A-Z a-z, цифры, _ и - (алфавит диплинков); без учёта регистра",
    )
    amount = models.PositiveIntegerField()
    max_redemptions = models.PositiveIntegerField()
    redeemed_count = models.PositiveIntegerField(default=0)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "промокод"
        verbose_name_plural = "промокоды"
        constraints = [
            models.CheckConstraint(condition=Q(redeemed_count__lte=F("max_redemptions")), name="promo_cap"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="promo_amount_positive"),
            models.CheckConstraint(condition=Q(code__regex=r"^[a-z0-9_-]+$"), name="promo_code_alphabet"),
        ]

    def __str__(self) -> str:
        return self.code


class PromoRedemption(models.Model):
    promo = models.ForeignKey(PromoCode, on_delete=models.PROTECT, related_name="redemptions")
    user = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="promo_redemptions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "погашение промокода"
        verbose_name_plural = "погашения промокодов"
        constraints = [models.UniqueConstraint(fields=["promo", "user"], name="promo_once_per_user")]

    def __str__(self) -> str:
        return f"{self.promo} · {self.user_id}"


class WelcomeClaim(models.Model):
    """Солёный хэш Telegram id: переживает /delete_me, чтобы бонус не выплачивался дважды."""

    id_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "выплаченный приветственный бонус"
        verbose_name_plural = "выплаченные приветственные бонусы"

    def __str__(self) -> str:
        return self.id_hash[:12]


class Referral(models.Model):
    """Кто кого пригласил. Награда — после первого оплаченного пополнения приглашённого.

    Возврат этого пополнения отменяет награду обоим (reversed_at, один раз); повторной награды нет.
    """

    inviter = models.ForeignKey(TelegramUser, on_delete=models.PROTECT, related_name="referrals_made")
    invitee = models.OneToOneField(TelegramUser, on_delete=models.PROTECT, related_name="referred_by")
    created_at = models.DateTimeField(auto_now_add=True)
    rewarded_at = models.DateTimeField(null=True, blank=True)
    reward_payment = models.ForeignKey(
        "Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="пополнение, за которое выдана награда: его возврат награду отменяет",
    )
    reversed_at = models.DateTimeField(null=True, blank=True, help_text="награда отменена возвратом")

    class Meta:
        verbose_name = "реферал"
        verbose_name_plural = "рефералы"
        constraints = [
            models.CheckConstraint(condition=~Q(inviter=F("invitee")), name="referral_not_self"),
            models.CheckConstraint(
                condition=Q(reversed_at__isnull=True) | Q(rewarded_at__isnull=False),
                name="referral_reversed_after_reward",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.inviter_id} → {self.invitee_id}"


class StaffAuditLog(models.Model):
    """Каждое денежное (и иное значимое) действие персонала: кто, что, над чем, зачем."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=48, blank=True, help_text="app_label.model")
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "действие персонала"
        verbose_name_plural = "журнал действий персонала"

    def __str__(self) -> str:
        return f"{self.actor} · {self.action}"
