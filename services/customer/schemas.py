"""Request and response models of the customer API."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from shared.clock import UtcDatetime
from shared.events.customer import CustomerKind, CustomerStatus, SalesChannel
from shared.events.segmentation import Tier
from shared.money import from_minor

if TYPE_CHECKING:
    from services.customer.models import Purchase


def _e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("must be an international phone number in E.164 form, such as +8613812345678") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _time_zone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise ValueError("must be an IANA time zone, such as Asia/Shanghai")
    return value


Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_e164)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2})?$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: CustomerKind = CustomerKind.individual
    name: Name
    email: EmailStr | None = Field(default=None, max_length=320)
    phone: Phone | None = None
    backup_phone: Phone | None = None
    locale: Locale = "zh-CN"
    time_zone: TimeZone = "Asia/Shanghai"
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None


class CustomerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: CustomerKind
    name: str
    email: str | None
    phone: str | None
    backup_phone: str | None
    locale: str
    time_zone: str
    region: str | None
    status: CustomerStatus
    tier: Tier | None
    created_at: datetime
    updated_at: datetime


class PurchaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    amount: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    channel: SalesChannel = SalesChannel.store
    item_count: Annotated[int, Field(ge=0, le=100_000)] = 1
    purchased_at: UtcDatetime | None = Field(
        default=None, description="When the purchase happened; now if omitted. May be in the past, for imports."
    )


class PurchaseRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    order_id: str
    amount: Decimal
    currency: str
    channel: SalesChannel
    item_count: int
    purchased_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, purchase: Purchase) -> PurchaseRead:
        return cls(
            id=purchase.id,
            customer_id=purchase.customer_id,
            order_id=purchase.order_id,
            amount=from_minor(purchase.amount_minor),
            currency=purchase.currency,
            channel=SalesChannel(purchase.channel),
            item_count=purchase.item_count,
            purchased_at=purchase.purchased_at,
            created_at=purchase.created_at,
        )
