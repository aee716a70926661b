"""Small helpers for the complaints tests: a running service, a complaint, a customer's tier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from services.complaints.models import CustomerTier
from shared.db import Database
from shared.messaging import outbox_message
from shared.roles import Role
from tests.harness import RunningService, auth

# A Tuesday morning, Shanghai time 10:00.
TUESDAY_10_SHANGHAI = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def staff(role: Role = Role.agent, subject: str = "agent-1") -> dict[str, str]:
    return auth(role, subject=subject)


async def open_complaint(
    service: RunningService, *, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    body = {
        "customer_id": str(fields.pop("customer_id", uuid.uuid4())),
        "channel": "phone",
        "category": "delivery",
        "description": "The parcel arrived a week late.",
        **fields,
    }
    response = await service.client.post("/complaints", json=body, headers=headers or staff())
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def move(
    service: RunningService,
    complaint_id: str,
    to: str,
    *,
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> Any:
    body = {"to": to, **({"reason": reason} if reason else {})}
    return await service.client.post(
        f"/complaints/{complaint_id}/transitions", json=body, headers=headers or staff()
    )


async def set_tier(
    service: RunningService, customer_id: uuid.UUID, tier: str, *, key_account: bool = False
) -> None:
    """Put a tier straight into the projection, as a tier_changed event would (tests of the API alone)."""
    db = Database(service.database_url)
    try:
        async with db.unit_of_work() as session:
            session.add(CustomerTier(customer_id=customer_id, tier=tier, key_account=key_account))
    finally:
        await db.dispose()


async def staged(service: RunningService) -> list[tuple[str, bytes]]:
    """(event type, body) of every event the service staged, in order."""
    db = Database(service.database_url)
    try:
        async with db.read() as session:
            rows = await session.execute(
                sa.select(outbox_message.c.event_type, outbox_message.c.body).order_by(outbox_message.c.seq)
            )
            return [(row.event_type, row.body) for row in rows]
    finally:
        await db.dispose()


async def staged_types(service: RunningService) -> list[str]:
    return [event_type for event_type, _ in await staged(service)]
