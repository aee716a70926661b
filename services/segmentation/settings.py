from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.segmentation.scoring import DEFAULT_TIER_RULES, TierRule
from shared.settings import ServiceSettings


class SegmentationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CSM_SEGMENTATION_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/segmentation.db"
    port: int = 8002
    # JSON in the environment, e.g. [{"tier": "gold", "min_monetary": "10000"}, {"tier": "lead"}].
    tier_rules: tuple[TierRule, ...] = Field(default=DEFAULT_TIER_RULES, min_length=1)
    policy_version: int = Field(default=1, ge=0)
