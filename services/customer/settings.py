from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, sqlite_url


class CustomerSettings(ServiceSettings):
    """Every figure here is policy an operator may change (CSM_CUSTOMER_<NAME>)."""

    model_config = SettingsConfigDict(env_prefix="CSM_CUSTOMER_", extra="ignore")

    database_url: str = Field(default_factory=lambda: sqlite_url("customer"))
    port: int = 8001
    # What the 360 view shows: the latest so many of each.
    view_recent_purchases: int = Field(default=10, ge=0, le=200)
    # A purchase recorded by hand (a staff token) above this amount takes a manager: a purchase
    # moves the customer in the pyramid. Systems recording sales use a service token.
    manual_purchase_limit: Decimal = Field(default=Decimal("50000"), ge=0)
    view_recent_interactions: int = Field(default=10, ge=0, le=200)
    view_recent_notifications: int = Field(default=10, ge=0, le=200)
    view_open_complaints: int = Field(default=20, ge=0, le=200)
    view_contacts: int = Field(default=50, ge=0, le=500)
    # Notifications kept per customer for the view (older ones are forgotten here; notify keeps them).
    notifications_kept: int = Field(default=20, ge=1)
    # A business relationship that hangs on fewer named contacts than this is flagged in the 360 view.
    min_business_contacts: int = Field(default=2, ge=0)
    # Complaint statuses that count as no longer open, besides a resolved event.
    closed_complaint_statuses: tuple[str, ...] = ("resolved", "closed", "cancelled", "withdrawn", "rejected")
    # Duplicate detection: how alike two names must be (0..1) to make a pair worth a look.
    duplicate_name_similarity: float = Field(default=0.85, ge=0, le=1)
    duplicate_candidates: int = Field(default=20, ge=1, le=200)
    # An interaction or a purchase may be dated a little ahead of the server's clock (devices
    # drift), not more.
    clock_skew_seconds: int = Field(default=300, ge=0)
    # No purchase is older than this (a date before it is a typo or a wrongly read layout).
    earliest_purchase: date = date(1970, 1, 1)
    # Bulk import: rows written (with their events) per transaction.
    import_batch_size: int = Field(default=2000, ge=1, le=50_000)
    # Uploaded import files and their rejected rows are kept this long, then purged.
    import_retention_days: int = Field(default=7, ge=1)
    import_max_bytes: int = Field(default=2 * 1024**3, ge=1)
    import_poll_seconds: float = Field(default=2.0, gt=0)
    # A running import whose worker has not committed a batch for this long is taken over by another.
    import_lease_seconds: int = Field(default=300, ge=1)
