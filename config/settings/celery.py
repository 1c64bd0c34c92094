"""Celery: очереди и надёжность (API_NOTES §4). Брокер — Redis или файловый kombu."""

from __future__ import annotations

from kombu import Queue

from config import env

# Очереди по характеру работы: быстрые, генерация, опрос видео, доставка, обслуживание
CELERY_QUEUE_NAMES = ("fast", "generation", "video_poll", "delivery", "maintenance")
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in CELERY_QUEUE_NAMES)
CELERY_TASK_DEFAULT_QUEUE = "fast"
# Очередь задачи — по префиксу её имени
CELERY_TASK_ROUTES = {f"{name}.*": {"queue": name} for name in CELERY_QUEUE_NAMES}
# Сколько сообщение может ждать в очереди, прежде чем health назовёт её отстающей
QUEUE_SLA_S = {"fast": 30, "generation": 120, "video_poll": 120, "delivery": 60, "maintenance": 300}

if env.REDIS_URL:
    CELERY_BROKER_URL = env.REDIS_URL
    _transport: dict[str, object] = {
        # Дольше любого countdown и жёсткого лимита, иначе acks_late-задача выполнится дважды
        "visibility_timeout": 7200,
        "global_keyprefix": f"{env.REDIS_KEY_PREFIX}celery:",
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
    }
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = True
else:
    _broker_dir = env.DATA_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    _transport = {
        # kombu filesystem: at-most-once, страховка — периодический sweeper
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
    # Рассылки управления (pidbox) файловому транспорту не нужны
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_BROKER_TRANSPORT_OPTIONS = _transport
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 5

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None

# Подтверждение после выполнения + повтор при гибели процесса, но ограниченный (Celery 5.7)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_RETRY_ON_WORKER_LOST = True
CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_WORKER_CONCURRENCY = env.CELERY_WORKER_CONCURRENCY
CELERY_WORKER_POOL = env.CELERY_WORKER_POOL
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 400_000  # КиБ: утечки не копятся бесконечно
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Исправление Django в Celery по умолчанию закрывает соединения с БД до и после КАЖДОЙ задачи:
# новое соединение PostgreSQL на задачу (~1 на задание в замере, форк бэкенда и разогрев его кэшей).
# С этим порогом оно закрывает их лишь раз в 2·N задач; устаревшие и сломанные соединения
# закрывает close_old_connections (CONN_MAX_AGE, CONN_HEALTH_CHECKS) — botapp/ops/celery_signals.py
CELERY_DB_REUSE_MAX = 1000
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_SEND_SENT_EVENT = False

# Модули задач и сигналов (пульс, отметка времени публикации, сторож beat)
CELERY_IMPORTS = (
    "botapp.tasks.maintenance",
    "botapp.tasks.billing",
    "botapp.tasks.generation",
    "dashboard.tasks",
    "botapp.ops.celery_signals",
)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = env.TIME_ZONE

# Пульс: главный процесс воркера пишет по таймеру, beat — при каждой публикации
WORKER_HEARTBEAT_INTERVAL_S = 10
WORKER_HEARTBEAT_MAX_AGE_S = 60
BEAT_TICK_INTERVAL_S = 30
BEAT_WATCHDOG_INTERVAL_S = 60
ALERT_COOLDOWN_S = 1800
