from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CustomerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CSM_CUSTOMER_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/customer.db"
    port: int = 8001
