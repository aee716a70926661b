"""Request and response models of the complaints API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.events.complaints import ComplaintCategory, ComplaintChannel, Severity


class ComplaintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: uuid.UUID
    channel: ComplaintChannel
    category: ComplaintCategory
    severity: Severity = Severity.normal
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]


class ComplaintRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    channel: ComplaintChannel
    category: ComplaintCategory
    severity: Severity
    description: str
    status: str
    first_owner: str
    created_at: datetime
    updated_at: datetime
