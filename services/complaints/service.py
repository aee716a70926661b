"""Complaint intake and lookup."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints.models import Complaint, CustomerTier
from services.complaints.schemas import ComplaintCreate
from shared.events.complaints import ComplaintOpened
from shared.events.segmentation import Tier
from shared.outbox import stage
from shared.problems import NotFound

SOURCE = "/csm/complaints"


async def open_complaint(
    *, session: AsyncSession, complaint_in: ComplaintCreate, first_owner: str, now: datetime
) -> Complaint:
    complaint = Complaint(
        id=uuid.uuid4(),
        customer_id=complaint_in.customer_id,
        channel=complaint_in.channel.value,
        category=complaint_in.category.value,
        severity=complaint_in.severity.value,
        description=complaint_in.description,
        status="new",
        first_owner=first_owner,
        created_at=now,
        updated_at=now,
    )
    session.add(complaint)
    await session.flush()
    known = await session.get(CustomerTier, complaint.customer_id)
    stage(
        session,
        ComplaintOpened(
            customer_id=complaint.customer_id,
            complaint_id=complaint.id,
            channel=complaint_in.channel,
            category=complaint_in.category,
            severity=complaint_in.severity,
            first_owner=first_owner,
            tier=Tier(known.tier) if known else None,
            opened_at=now,
        ),
        source=SOURCE,
        time=now,
    )
    return complaint


async def get(*, session: AsyncSession, complaint_id: uuid.UUID) -> Complaint:
    complaint = await session.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound(f"No complaint {complaint_id}.")
    return complaint
