from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ComplaintsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CSM_COMPLAINTS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/complaints.db"
    port: int = 8003
