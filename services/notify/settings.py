from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CSM_NOTIFY_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/notify.db"
    port: int = 8004
