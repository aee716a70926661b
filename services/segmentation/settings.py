from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, sqlite_url


class SegmentationSettings(ServiceSettings):
    """Deployment settings only: the segmentation policy itself is data, versioned through the API."""

    model_config = SettingsConfigDict(env_prefix="CSM_SEGMENTATION_", extra="ignore")

    database_url: str = Field(default_factory=lambda: sqlite_url("segmentation"))
    port: int = 8002
    # How often the scheduler looks whether the batch is due (its due time is in the database).
    batch_check_seconds: float = Field(default=60.0, gt=0)
    # An analysis date ("as of") may lie this far ahead of the clock (clocks differ a little), no further.
    clock_skew_seconds: int = Field(default=300, ge=0)
