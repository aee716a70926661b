"""Events the customer service publishes on ``csm.customer``."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events.base import Event

TOPIC = "csm.customer"

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class CustomerKind(StrEnum):
    individual = "individual"
    business = "business"
    retailer = "retailer"


class CustomerStatus(StrEnum):
    active = "active"
    dormant = "dormant"
    lost = "lost"
    erased = "erased"


class SalesChannel(StrEnum):
    store = "store"
    web = "web"
    app = "app"
    call_centre = "call_centre"
    field_sales = "field_sales"
    partner = "partner"
    other = "other"


class InteractionChannel(StrEnum):
    phone = "phone"
    visit = "visit"
    email = "email"
    chat = "chat"
    web = "web"
    app = "app"
    store = "store"
    other = "other"


class Sentiment(StrEnum):
    positive = "positive"
    neutral = "neutral"
    negative = "negative"


class BehaviourSignal(StrEnum):
    """Behaviour that reveals silent dissatisfaction (most unhappy customers never complain)."""

    late_payment = "late_payment"
    rude_to_staff = "rude_to_staff"
    usage_drop = "usage_drop"
    cancellation_request = "cancellation_request"


class ContactChannel(StrEnum):
    email = "email"
    sms = "sms"
    phone = "phone"
    in_app = "in_app"
    webhook = "webhook"


class Purpose(StrEnum):
    service = "service"
    marketing = "marketing"


class CustomerProfile(BaseModel):
    """The facts about a customer that other services keep projections of."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CustomerKind
    name: str
    email: str | None = None
    phone: str | None = None
    backup_phone: str | None = None
    locale: str = "zh-CN"
    time_zone: str = "Asia/Shanghai"
    region: str | None = None
    status: CustomerStatus = CustomerStatus.active
    tags: tuple[str, ...] = ()
    account_manager: str | None = None


# What of a profile names or reaches the person: sealed on the broker (shared.sealing).
PROFILE_PERSONAL = (
    "profile.name",
    "profile.email",
    "profile.phone",
    "profile.backup_phone",
    "profile.region",
)


class CustomerRegistered(Event):
    type: ClassVar[str] = "csm.customer.registered.v1"
    topic: ClassVar[str] = TOPIC
    personal: ClassVar[tuple[str, ...]] = PROFILE_PERSONAL

    profile: CustomerProfile
    registered_at: AwareDatetime
    # True when the customer came in with a bulk import of existing data: a record that is new
    # here, not a new customer, so no welcome is due.
    imported: bool = False


class CustomerUpdated(Event):
    type: ClassVar[str] = "csm.customer.updated.v1"
    topic: ClassVar[str] = TOPIC
    personal: ClassVar[tuple[str, ...]] = PROFILE_PERSONAL

    profile: CustomerProfile
    changed: tuple[str, ...]


class CustomerErased(Event):
    """Every service purges what it holds about this person when it sees this."""

    type: ClassVar[str] = "csm.customer.erased.v1"
    topic: ClassVar[str] = TOPIC

    erased_at: AwareDatetime


class CustomerMerged(Event):
    """``merged_id`` was a duplicate of ``customer_id``; everything it had now belongs to the survivor."""

    type: ClassVar[str] = "csm.customer.merged.v1"
    topic: ClassVar[str] = TOPIC

    merged_id: uuid.UUID
    merged_at: AwareDatetime


class PurchaseRecorded(Event):
    type: ClassVar[str] = "csm.purchase.recorded.v1"
    topic: ClassVar[str] = TOPIC

    purchase_id: uuid.UUID
    order_id: str
    amount: Money
    currency: CurrencyCode
    channel: SalesChannel
    purchased_at: AwareDatetime
    item_count: int = Field(ge=0)
    first_purchase: bool
    # ``amount`` is in ``currency``, the reporting currency; these say what was paid, and the rate
    # (reporting units per unit paid) it was converted at. Absent in events from before currencies.
    original_amount: Money | None = None
    original_currency: CurrencyCode | None = None
    exchange_rate: Decimal | None = Field(default=None, gt=0)
    # True for a purchase from a bulk import of history: count it, but it is not news to follow up.
    imported: bool = False


class PurchaseRefunded(Event):
    type: ClassVar[str] = "csm.purchase.refunded.v1"
    topic: ClassVar[str] = TOPIC

    purchase_id: uuid.UUID
    refund_id: uuid.UUID
    amount: Money
    currency: CurrencyCode
    refunded_at: AwareDatetime
    fully_refunded: bool
    # As given back, in the currency the purchase was paid (``amount`` is converted at its rate).
    original_amount: Money | None = None
    original_currency: CurrencyCode | None = None


class InteractionLogged(Event):
    type: ClassVar[str] = "csm.interaction.logged.v1"
    topic: ClassVar[str] = TOPIC
    personal: ClassVar[tuple[str, ...]] = ("outcome",)

    interaction_id: uuid.UUID
    channel: InteractionChannel
    kind: str
    outcome: str | None = None
    sentiment: Sentiment | None = None
    signal: BehaviourSignal | None = None
    occurred_at: AwareDatetime


class ConsentChanged(Event):
    type: ClassVar[str] = "csm.customer.consent_changed.v1"
    topic: ClassVar[str] = TOPIC

    channel: ContactChannel
    purpose: Purpose
    granted: bool
    source: str
    changed_at: AwareDatetime


class ContactChanged(Event):
    """A named contact at a business customer was added, changed or removed: who writes for it."""

    type: ClassVar[str] = "csm.customer.contact_changed.v1"
    topic: ClassVar[str] = TOPIC
    personal: ClassVar[tuple[str, ...]] = ("email",)

    contact_id: uuid.UUID
    email: str | None = None
    removed: bool = False
    changed_at: AwareDatetime


class InterestsChanged(Event):
    type: ClassVar[str] = "csm.customer.interests_changed.v1"
    topic: ClassVar[str] = TOPIC

    interests: tuple[str, ...]
    changed_at: AwareDatetime


EVENTS: tuple[type[Event], ...] = (
    CustomerRegistered,
    CustomerUpdated,
    CustomerErased,
    CustomerMerged,
    PurchaseRecorded,
    PurchaseRefunded,
    InteractionLogged,
    ConsentChanged,
    InterestsChanged,
    ContactChanged,
)
