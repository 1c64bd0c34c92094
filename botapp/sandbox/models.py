"""Состояние эмулятора Bot API — в PostgreSQL: веб-процессов несколько, а тесты смотрят из своего.

Менеджеры объявлены явно: mypy видит их типы, даже когда приложение не в INSTALLED_APPS
(в production песочница не подключается).
"""

from __future__ import annotations

from django.db import models


class SandboxChat(models.Model):
    """Чат с ботом: личный (id > 0) или группа (id < 0); счётчик message_id — свой у каждого чата."""

    objects: models.Manager[SandboxChat] = models.Manager()

    class Type(models.TextChoices):
        PRIVATE = "private"
        GROUP = "group"
        SUPERGROUP = "supergroup"

    chat_id = models.BigIntegerField(unique=True)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.PRIVATE)
    title = models.CharField(max_length=128, blank=True)
    first_name = models.CharField(max_length=64, blank=True)
    last_name = models.CharField(max_length=64, blank=True)
    username = models.CharField(max_length=64, blank=True, db_index=True)
    language_code = models.CharField(max_length=16, blank=True)
    last_message_id = models.IntegerField(default=0)
    # Текущая reply-клавиатура (последняя присланная ботом) — её рисует веб-чат
    reply_keyboard = models.JSONField(null=True, blank=True)
    # sendChatAction: «печатает…» до указанного момента
    action = models.CharField(max_length=32, blank=True)
    action_until = models.DateTimeField(null=True, blank=True)
    # Пользователь заблокировал бота: вызовы в этот чат — 403, как у Telegram
    blocked_bot = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "чат песочницы"
        verbose_name_plural = "чаты песочницы"

    def __str__(self) -> str:
        return f"{self.type} {self.chat_id}"


class SandboxFile(models.Model):
    """Файл, загруженный ботом или «пользователем»; байты — в БД, чтобы их видел любой процесс."""

    objects: models.Manager[SandboxFile] = models.Manager()

    file_id = models.CharField(max_length=128, unique=True)
    file_unique_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16)  # photo / document / video / animation / …
    file_path = models.CharField(max_length=255, unique=True)
    file_name = models.CharField(max_length=255, blank=True)
    mime_type = models.CharField(max_length=128, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    origin = models.CharField(max_length=8, default="bot")  # bot / user
    content = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "файл песочницы"
        verbose_name_plural = "файлы песочницы"

    def __str__(self) -> str:
        return self.file_path


class SandboxMessage(models.Model):
    """Сообщение в чате: от бота (через эмулятор) или от пользователя (из веб-чата и тестов)."""

    objects: models.Manager[SandboxMessage] = models.Manager()

    class Direction(models.TextChoices):
        BOT = "bot"
        USER = "user"

    chat = models.ForeignKey(SandboxChat, on_delete=models.CASCADE, related_name="messages")
    message_id = models.IntegerField()
    direction = models.CharField(max_length=8, choices=Direction.choices)
    kind = models.CharField(max_length=24)  # text / photo / document / video / invoice / successful_payment …
    text = models.TextField(blank=True)
    caption = models.TextField(blank=True)
    entities = models.JSONField(default=list, blank=True)
    reply_markup = models.JSONField(null=True, blank=True)
    # Поля Message, зависящие от вида: photo, document, video, invoice, successful_payment …
    extra = models.JSONField(default=dict, blank=True)
    files = models.ManyToManyField(SandboxFile, blank=True, related_name="messages")
    media_group_id = models.CharField(max_length=32, blank=True)
    reply_to_message_id = models.IntegerField(null=True, blank=True)
    date = models.DateTimeField()
    edited = models.BooleanField(default=False)
    edit_date = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        verbose_name = "сообщение песочницы"
        verbose_name_plural = "сообщения песочницы"
        constraints = (
            models.UniqueConstraint(fields=["chat", "message_id"], name="sandbox_message_unique_id"),
        )
        ordering = ("chat_id", "message_id")

    def __str__(self) -> str:
        return f"#{self.message_id} {self.direction} {self.kind}"


class SandboxCall(models.Model):
    """Журнал вызовов Bot API: по нему тесты проверяют, что и как бот отправил. Токен не пишется."""

    objects: models.Manager[SandboxCall] = models.Manager()

    method = models.CharField(max_length=64, db_index=True)
    chat_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # Загрузки заменены на {"upload": имя, "size": байты}
    params = models.JSONField(default=dict, blank=True)
    status = models.PositiveSmallIntegerField()
    error = models.CharField(max_length=255, blank=True)
    injected = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "вызов Bot API"
        verbose_name_plural = "вызовы Bot API"
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.method} → {self.status}"

    @property
    def ok(self) -> bool:
        return self.status == 200


class SandboxFailure(models.Model):
    """Заказанный тестом сбой: следующие `remaining` вызовов метода (в чат) получат эту ошибку."""

    objects: models.Manager[SandboxFailure] = models.Manager()

    method = models.CharField(max_length=64)
    chat_id = models.BigIntegerField(null=True, blank=True)
    remaining = models.PositiveIntegerField(default=1)
    error_code = models.PositiveSmallIntegerField()
    description = models.CharField(max_length=255)
    parameters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "заказанный сбой"
        verbose_name_plural = "заказанные сбои"
        indexes = (models.Index(fields=["method", "chat_id"]),)

    def __str__(self) -> str:
        return f"{self.method} ×{self.remaining} → {self.error_code}"


class SandboxWebhook(models.Model):
    """Настройки вебхука (одна строка на бота)."""

    objects: models.Manager[SandboxWebhook] = models.Manager()

    bot_id = models.BigIntegerField(unique=True)
    url = models.CharField(max_length=1024, blank=True)
    secret_token = models.CharField(max_length=256, blank=True)
    max_connections = models.PositiveSmallIntegerField(default=40)
    allowed_updates = models.JSONField(null=True, blank=True)
    ip_address = models.CharField(max_length=64, blank=True)
    has_custom_certificate = models.BooleanField(default=False)
    last_error_date = models.DateTimeField(null=True, blank=True)
    last_error_message = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "вебхук песочницы"
        verbose_name_plural = "вебхуки песочницы"

    def __str__(self) -> str:
        return self.url or "(no webhook)"


class SandboxSetting(models.Model):
    """Прочие настройки бота: команды по области и языку, кнопка меню — ключ → JSON."""

    objects: models.Manager[SandboxSetting] = models.Manager()

    key = models.CharField(max_length=255, unique=True)
    value = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "настройка бота"
        verbose_name_plural = "настройки бота"

    def __str__(self) -> str:
        return self.key


class SandboxUpdate(models.Model):
    """Апдейт от «пользователя»; update_id = id строки (последовательность не сбрасывается)."""

    objects: models.Manager[SandboxUpdate] = models.Manager()

    payload = models.JSONField()
    delivered = models.BooleanField(default=False)
    delivery_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "апдейт песочницы"
        verbose_name_plural = "апдейты песочницы"
        ordering = ("id",)

    def __str__(self) -> str:
        return f"update {self.pk}"


class SandboxQuery(models.Model):
    """callback_query или pre_checkout_query, ждущий ответа бота."""

    objects: models.Manager[SandboxQuery] = models.Manager()

    class Kind(models.TextChoices):
        CALLBACK = "callback"
        PRE_CHECKOUT = "pre_checkout"

    query_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    chat = models.ForeignKey(SandboxChat, on_delete=models.CASCADE, related_name="queries")
    message_id = models.IntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)  # callback_data или поля счёта
    answered = models.BooleanField(default=False)
    answer = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "запрос к боту"
        verbose_name_plural = "запросы к боту"

    def __str__(self) -> str:
        return f"{self.kind} {self.query_id}"


class SandboxStarPayment(models.Model):
    """Оплата звёздами; refundStarPayment и getStarTransactions работают с этими строками."""

    objects: models.Manager[SandboxStarPayment] = models.Manager()

    charge_id = models.CharField(max_length=128, unique=True)
    user_id = models.BigIntegerField()
    amount = models.PositiveIntegerField()
    invoice_payload = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "оплата звёздами"
        verbose_name_plural = "оплаты звёздами"
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.charge_id} {self.amount}⭐"
