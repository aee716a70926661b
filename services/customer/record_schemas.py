"""Request and response models of what happens with a customer: purchases, refunds, interactions,
interests, consent, the relationship record and the 360 view."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, Field, StringConstraints, field_validator, model_validator

from services.customer import profile_rules
from services.customer.schemas import (
    ContactRead,
    CustomerRead,
    LongText,
    ShortText,
    Standing,
    _bounded,
    _Input,
)
from shared.clock import UtcDatetime
from shared.events.complaints import ComplaintCategory, Severity
from shared.events.customer import (
    BehaviourSignal,
    ContactChannel,
    InteractionChannel,
    Purpose,
    SalesChannel,
    Sentiment,
)

Amount = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
# What an order cost: zero for a free sample or a fully discounted order (it counts as a purchase,
# for frequency and recency, and adds nothing to what the customer spent); never negative.
OrderAmount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Reference = Annotated[str, _bounded(100)]


class LineItem(_Input):
    sku: Annotated[str, _bounded(100)]
    name: ShortText | None = None
    quantity: Annotated[int, Field(ge=1, le=100_000)] = 1
    unit_price: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


class PurchaseCreate(_Input):
    order_id: Reference
    amount: OrderAmount
    currency: Currency
    channel: SalesChannel = SalesChannel.store
    item_count: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        default=None, description="How many items; the sum of the line items' quantities if omitted, else 1."
    )
    line_items: Annotated[list[LineItem], Field(max_length=500)] | None = None
    purchased_at: UtcDatetime | None = Field(
        default=None,
        description="When the purchase happened; now if omitted. May be in the past, for imports.",
    )

    @model_validator(mode="after")
    def _items_agree(self) -> PurchaseCreate:
        if self.line_items:
            quantity = sum(item.quantity for item in self.line_items)
            if self.item_count is not None and self.item_count != quantity:
                raise ValueError("item_count must equal the sum of the line items' quantities")
            self.item_count = quantity
        elif self.item_count is None:
            self.item_count = 1
        return self


class RefundRead(BaseModel):
    id: uuid.UUID
    purchase_id: uuid.UUID
    reference: str
    amount: Decimal = Field(description="In the reporting currency, at the purchase's rate.")
    currency: str
    original_amount: Decimal = Field(description="In the currency the purchase was paid.")
    original_currency: str
    reason: str | None
    refunded_at: datetime


class PurchaseRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    order_id: str
    amount: Decimal = Field(description="In the reporting currency: what every figure counts.")
    refunded: Decimal
    currency: str
    original_amount: Decimal = Field(description="As paid, in original_currency.")
    original_refunded: Decimal
    original_currency: str
    exchange_rate: Decimal = Field(
        description="Units of the reporting currency per unit paid (1 if the same)."
    )
    channel: SalesChannel
    item_count: int
    line_items: list[dict[str, Any]] | None
    purchased_at: datetime
    created_at: datetime


class ExchangeRateCreate(_Input):
    currency: Currency
    rate: Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=10)] = Field(
        description="Units of the reporting currency one unit of this currency is worth."
    )
    effective_from: UtcDatetime = Field(
        description="Purchases from this moment on are converted at this rate."
    )


class ExchangeRateRead(BaseModel):
    id: uuid.UUID
    currency: str
    reporting_currency: str
    rate: Decimal
    effective_from: datetime
    stated_by: str
    created_at: datetime


class RefundCreate(_Input):
    reference: Reference = Field(
        description="The company's refund or credit-note number: it makes the refund idempotent."
    )
    amount: Amount | None = Field(
        default=None, description="What is refunded; everything not yet refunded if omitted."
    )
    currency: Currency = Field(description="The currency the purchase was paid in.")
    reason: Annotated[str, _bounded(500)] | None = None
    refunded_at: UtcDatetime | None = None


class Totals(BaseModel):
    """Lifetime figures of a customer's purchases."""

    purchases: int
    spent: Decimal
    refunded: Decimal
    net: Decimal
    currency: str
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class InteractionKind(StrEnum):
    call = "call"
    visit = "visit"
    email = "email"
    chat = "chat"
    meeting = "meeting"
    message = "message"
    signal = "signal"
    other = "other"


class InteractionCreate(_Input):
    channel: InteractionChannel
    kind: InteractionKind
    summary: LongText | None = None
    outcome: ShortText | None = None
    sentiment: Sentiment | None = None
    signal: BehaviourSignal | None = Field(
        default=None,
        validate_default=True,
        description="Behaviour that shows silent dissatisfaction; required when kind is signal.",
    )
    occurred_at: UtcDatetime | None = Field(default=None, description="Now if omitted; never in the future.")

    @field_validator("signal")
    @classmethod
    def _signal_for_signals(cls, value: BehaviourSignal | None, info: Any) -> BehaviourSignal | None:
        if value is None and info.data.get("kind") is InteractionKind.signal:
            raise ValueError("is required when kind is signal")
        return value


class InteractionRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    channel: InteractionChannel
    kind: InteractionKind
    summary: str | None
    outcome: str | None
    sentiment: Sentiment | None
    signal: BehaviourSignal | None
    logged_by: str
    occurred_at: datetime


Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Source = Annotated[str, _bounded(100)]


class InterestsUpdate(_Input):
    """The whole set of topics the customer cares about now; what is missing is removed."""

    interests: Annotated[list[Topic], Field(max_length=100)]
    source: Source = Field(
        description="Where the change came from: 'web profile', 'call with agent', 'analysis'."
    )

    @field_validator("interests")
    @classmethod
    def _normalise(cls, topics: list[str]) -> list[str]:
        return list(profile_rules.distinct([profile_rules.tag(topic) for topic in topics]))


class InterestRead(BaseModel):
    topic: str
    source: str
    since: datetime


class InterestChangeRead(BaseModel):
    topic: str
    added: bool
    source: str
    changed_by: str
    changed_at: datetime


class ConsentUpdate(_Input):
    granted: bool
    source: Source = Field(
        description="Where the customer said so: 'web form', 'phone call', 'signed contract'."
    )


class ConsentRead(BaseModel):
    channel: ContactChannel
    purpose: Purpose
    granted: bool
    source: str
    changed_at: datetime


class ConsentChangeRead(ConsentRead):
    changed_by: str


class RelationshipUpdate(_Input):
    past_cooperation: LongText | None = None
    current_cooperation: LongText | None = None
    expected_cooperation: LongText | None = None
    competitors: list[ShortText] = Field(default_factory=list, max_length=50)
    notes: LongText | None = None


class RelationshipRead(RelationshipUpdate):
    updated_at: datetime | None = None


class InstallationCreate(_Input):
    """A project or installed equipment, for after-sales service."""

    product: ShortText
    serial_number: Reference | None = None
    location: Annotated[str, _bounded(300)] | None = None
    installed_at: UtcDatetime | None = None
    warranty_until: UtcDatetime | None = None
    notes: LongText | None = None


class InstallationRead(BaseModel):
    id: uuid.UUID
    product: str
    serial_number: str | None
    location: str | None
    installed_at: datetime | None
    warranty_until: datetime | None
    notes: str | None


class AttachmentKind(StrEnum):
    store_front_photo = "store_front_photo"
    site_photo = "site_photo"
    contract = "contract"
    document = "document"
    other = "other"


class AttachmentCreate(_Input):
    """A file kept elsewhere (a document store, a CDN), by reference."""

    kind: AttachmentKind
    url: AnyHttpUrl
    caption: ShortText | None = None

    @field_validator("url")
    @classmethod
    def _length(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(url)) > 2000:
            raise ValueError("must be at most 2000 characters")
        return url


class AttachmentRead(BaseModel):
    id: uuid.UUID
    kind: AttachmentKind
    url: str
    caption: str | None
    created_at: datetime


class ComplaintBrief(BaseModel):
    id: uuid.UUID
    status: str
    category: ComplaintCategory | None
    severity: Severity | None
    first_owner: str | None
    opened_at: datetime | None
    resolution_due_at: datetime | None


class NotificationBrief(BaseModel):
    id: uuid.UUID
    channel: ContactChannel
    purpose: Purpose
    playbook: str
    step: str
    sent_at: datetime


class PurchaseBrief(BaseModel):
    id: uuid.UUID
    order_id: str
    amount: Decimal = Field(description="In the reporting currency (the totals' currency).")
    refunded: Decimal
    channel: SalesChannel
    item_count: int
    purchased_at: datetime
    original_amount: Decimal = Field(description="As paid, in original_currency.")
    original_currency: str


class InteractionBrief(BaseModel):
    id: uuid.UUID
    channel: InteractionChannel
    kind: InteractionKind
    outcome: str | None
    sentiment: Sentiment | None
    signal: BehaviourSignal | None
    occurred_at: datetime


class Customer360(BaseModel):
    """Everything a front-line agent needs about one customer, in one answer."""

    customer: CustomerRead
    standing: Standing
    totals: Totals
    contacts: list[ContactRead]
    contact_warning: str | None = Field(
        description="Set when a business relationship hangs on too few people."
    )
    recent_purchases: list[PurchaseBrief]
    open_complaints: list[ComplaintBrief]
    recent_notifications: list[NotificationBrief]
    recent_interactions: list[InteractionBrief]
    interests: list[str]
    consents: list[ConsentRead]


class ImportKind(StrEnum):
    customers = "customers"
    purchases = "purchases"


class ImportSummary(BaseModel):
    rows: int = 0
    imported: int = 0
    already_imported: int = 0
    rejected: int = 0


class ImportJobRead(ImportSummary):
    id: uuid.UUID
    kind: ImportKind
    status: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None
