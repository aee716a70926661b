"""HTTP routes of the notify service."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter

from services.notify import service
from services.notify.deps import AgentOrService, ReadSessionDep
from services.notify.schemas import NotificationRead
from shared.pagination import CursorParam, Limit, Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", summary="A customer's notifications, newest first")
async def list_notifications(
    customer_id: uuid.UUID,
    session: ReadSessionDep,
    _user: AgentOrService,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[NotificationRead]:
    before = None
    if cursor:
        created_at, notification_id = decode_cursor(cursor, 2)
        before = (datetime.fromisoformat(str(created_at)), uuid.UUID(str(notification_id)))
    found = await service.list_for_customer(session=session, customer_id=customer_id, before=before, limit=limit + 1)
    page = found[:limit]
    next_cursor = encode_cursor(page[-1].created_at.isoformat(), page[-1].id) if len(found) > limit else None
    return Page[NotificationRead](items=[NotificationRead.model_validate(n) for n in page], next_cursor=next_cursor)
