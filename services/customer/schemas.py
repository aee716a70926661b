"""Request and response models of the customer profile: who the customer is and who speaks for them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from services.customer import profile_rules
from shared.clock import UtcDatetime
from shared.events.customer import CustomerKind, CustomerStatus, SalesChannel
from shared.events.segmentation import ChurnRisk, LoyaltyStage, Tier, ValueGroup


class CompanySize(StrEnum):
    """Head count bands of a business customer."""

    micro = "micro"  # under 10
    small = "small"  # 10 to 49
    medium = "medium"  # 50 to 249
    large = "large"  # 250 to 999
    enterprise = "enterprise"  # 1,000 and more


class ContactRole(StrEnum):
    decision_maker = "decision_maker"
    purchasing = "purchasing"
    finance = "finance"
    technical = "technical"
    other = "other"


class LiveStatus(StrEnum):
    """The statuses a person may set; ``erased`` comes only from an erasure."""

    active = "active"
    dormant = "dormant"
    lost = "lost"


def _bounded(max_length: int, min_length: int = 1) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Phone = Annotated[str, _bounded(32), AfterValidator(profile_rules.e164)]
Email = Annotated[str, _bounded(320), AfterValidator(profile_rules.email_address)]
TimeZone = Annotated[str, AfterValidator(profile_rules.time_zone)]
Locale = Annotated[str, AfterValidator(profile_rules.locale_tag)]
Name = Annotated[str, _bounded(200), AfterValidator(profile_rules.clean_text)]
ShortText = Annotated[str, _bounded(200)]
LongText = Annotated[str, _bounded(10_000)]
Tag = Annotated[str, AfterValidator(profile_rules.tag)]
StaffId = Annotated[str, _bounded(100)]
ExternalId = Annotated[str, _bounded(100)]
Industry = Annotated[str, _bounded(100)]

BUSINESS_KINDS = frozenset({CustomerKind.business, CustomerKind.retailer})


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ProfileFields(_Input):
    email: Email | None = None
    phone: Phone | None = None
    backup_phone: Phone | None = None
    address: Annotated[str, _bounded(500)] | None = None
    region: Annotated[str, _bounded(100)] | None = None
    acquisition_source: ShortText | None = Field(
        default=None, description="How they found us: a campaign, a fair, a referral."
    )
    acquisition_channel: SalesChannel | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    account_manager: StaffId | None = Field(
        default=None, description="The staff member who looks after this customer."
    )
    notes: LongText | None = None

    @field_validator("tags")
    @classmethod
    def _distinct_tags(cls, tags: list[str] | None) -> list[str] | None:
        return list(profile_rules.distinct(tags)) if tags is not None else None


class CustomerCreate(_ProfileFields):
    kind: CustomerKind = CustomerKind.individual
    name: Name
    locale: Locale = "zh-CN"
    time_zone: TimeZone = "Asia/Shanghai"
    status: LiveStatus = LiveStatus.active
    external_id: ExternalId | None = Field(
        default=None, description="The customer's key in the system they came from; unique, used by imports."
    )
    customer_since: UtcDatetime | None = Field(
        default=None, description="When they became a customer; now if omitted."
    )
    # After kind, so that their check can see it.
    industry: Industry | None = None
    company_size: CompanySize | None = None

    @field_validator("industry", "company_size")
    @classmethod
    def _only_for_businesses(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("kind") not in BUSINESS_KINDS:
            raise ValueError("is kept for business and retailer customers only")
        return value

    @field_validator("backup_phone")
    @classmethod
    def _backup_differs(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value == info.data.get("phone"):
            raise ValueError("must differ from the primary phone")
        return value


class CustomerUpdate(_ProfileFields):
    """Only the fields sent change; ``null`` clears an optional field."""

    kind: CustomerKind | None = None
    name: Name | None = None
    locale: Locale | None = None
    time_zone: TimeZone | None = None
    status: LiveStatus | None = None
    industry: Industry | None = None
    company_size: CompanySize | None = None

    @field_validator("kind", "name", "locale", "time_zone", "status", mode="before")
    @classmethod
    def _required_stays_set(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be cleared")
        return value


class Standing(BaseModel):
    """Segmentation's verdict on this customer, as last heard from its events."""

    tier: Tier | None = None
    segment: str | None = None
    value_group: ValueGroup | None = None
    loyalty_stage: LoyaltyStage | None = None
    key_account: bool = False
    churn_risk: ChurnRisk | None = None
    probability_alive: float | None = None
    expected_purchases: float | None = Field(
        default=None, description="Purchase days segmentation expects in the next expected_purchases_days."
    )
    expected_purchases_days: int | None = None
    tier_changed_at: datetime | None = None
    risk_changed_at: datetime | None = None


class CustomerRead(BaseModel):
    id: uuid.UUID
    external_id: str | None
    kind: CustomerKind
    name: str
    email: str | None
    phone: str | None
    backup_phone: str | None
    locale: str
    time_zone: str
    address: str | None
    region: str | None
    industry: str | None
    company_size: CompanySize | None
    acquisition_source: str | None
    acquisition_channel: SalesChannel | None
    status: CustomerStatus
    tags: list[str]
    account_manager: str | None
    notes: str | None
    customer_since: datetime
    tier: Tier | None
    created_at: datetime
    updated_at: datetime


class CustomerSummary(BaseModel):
    """One line of a search result."""

    id: uuid.UUID
    kind: CustomerKind
    name: str
    email: str | None
    phone: str | None
    status: CustomerStatus
    tier: Tier | None
    account_manager: str | None
    tags: list[str]


class ContactCreate(_Input):
    name: Name
    role: ContactRole
    title: ShortText | None = Field(default=None, description="Job title, as they give it.")
    email: Email | None = None
    phone: Phone | None = None
    backup_phone: Phone | None = None
    notes: LongText | None = None


class ContactUpdate(_Input):
    name: Name | None = None
    role: ContactRole | None = None
    title: ShortText | None = None
    email: Email | None = None
    phone: Phone | None = None
    backup_phone: Phone | None = None
    notes: LongText | None = None

    @field_validator("name", "role", mode="before")
    @classmethod
    def _required_stays_set(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be cleared")
        return value


class ContactRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    name: str
    role: ContactRole
    title: str | None
    email: str | None
    phone: str | None
    backup_phone: str | None
    notes: str | None
    created_at: datetime
    updated_at: datetime


class DuplicateCandidate(BaseModel):
    customer: CustomerSummary
    score: float = Field(description="0 to 1: how likely the two records are one customer.")
    reasons: list[str]


class MergeRequest(_Input):
    duplicate_id: uuid.UUID = Field(description="The record to fold into this one; it stops existing.")


class MergeResult(BaseModel):
    customer: CustomerRead
    merged_id: uuid.UUID
    moved: dict[str, int]
    not_kept: list[str] = Field(
        description="Fields of the duplicate that differed and were not carried over."
    )
