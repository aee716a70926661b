from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, sqlite_url


class ComplaintsSettings(ServiceSettings):
    """Process settings; the complaint policy itself (targets, calendars, ladder, limits) is data,
    changed at run time through ``PUT /complaint-policy``."""

    model_config = SettingsConfigDict(env_prefix="CSM_COMPLAINTS_", extra="ignore")

    database_url: str = Field(default_factory=lambda: sqlite_url("complaints"))
    port: int = 8003
    # How often the deadline scanner looks for warnings, breaches and escalations that are due.
    scan_interval_seconds: float = Field(default=5.0, gt=0)
    # Complaints one scanner claims per transaction; replicas claim disjoint batches.
    scan_batch_size: int = Field(default=200, ge=1, le=10_000)
    # How long an Idempotency-Key protects a retried POST.
    idempotency_ttl_hours: int = Field(default=24, ge=1)
