"""Response models of the notify API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.events.customer import ContactChannel, Purpose


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    playbook: str
    channel: ContactChannel
    purpose: Purpose
    title: str
    body: str
    status: str
    cause_event_id: uuid.UUID | None
    created_at: datetime
    sent_at: datetime | None
