"""Хранилище медиа: Supabase Storage или локальный диск (встроенная замена)."""

from __future__ import annotations

from config import env

SUPABASE_URL = env.SUPABASE_URL
SUPABASE_SERVICE_ROLE_KEY = env.SUPABASE_SERVICE_ROLE_KEY
SUPABASE_BUCKET = env.SUPABASE_BUCKET
SUPABASE_VIDEO_BUCKET = env.SUPABASE_VIDEO_BUCKET
MEDIA_STORAGE_BACKEND = "supabase" if (env.SUPABASE_URL and env.SUPABASE_SERVICE_ROLE_KEY) else "local"
MEDIA_RETENTION_DAYS = env.MEDIA_RETENTION_DAYS
