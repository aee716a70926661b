"""Reading messages, the customer's preferences, and the webhook endpoints staff systems register."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import webhook_targets
from services.notify.channels import new_webhook_secret
from services.notify.errors import (
    CustomerNotKnown,
    NotificationNotFound,
    WebhookNameTaken,
    WebhookNotFound,
    WebhookTargetRefused,
)
from services.notify.models import Consent, Contact, Notification, Preference, WebhookEndpoint
from services.notify.schemas import (
    ChannelChoice,
    PreferencesRead,
    PreferencesUpdate,
    QuietHoursChoice,
    WebhookWrite,
)
from services.notify.webhook_targets import Network
from shared.pagination import keyset_page


async def list_notifications(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID | None,
    channel: str | None,
    status: str | None,
    playbook: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Notification], str | None]:
    """Newest first."""
    query = sa.select(Notification)
    if customer_id is not None:
        query = query.where(Notification.customer_id == customer_id)
    if channel is not None:
        query = query.where(Notification.channel == channel)
    if status is not None:
        query = query.where(Notification.status == status)
    if playbook is not None:
        query = query.where(Notification.playbook == playbook)
    return await keyset_page(
        query,
        session=session,
        order=[Notification.created_at, Notification.id],
        descending=True,
        limit=limit,
        cursor=cursor,
    )


async def get_notification(*, session: AsyncSession, notification_id: uuid.UUID) -> Notification:
    notification = await session.get(Notification, notification_id)
    if notification is None:
        raise NotificationNotFound()
    return notification


async def mark_read(*, session: AsyncSession, notification_id: uuid.UUID, now: datetime) -> Notification:
    notification = await get_notification(session=session, notification_id=notification_id)
    if notification.read_at is None:
        notification.read_at = now
    return notification


async def get_preferences(*, session: AsyncSession, customer_id: uuid.UUID) -> PreferencesRead:
    preference = await session.get(Preference, customer_id)
    consents = (await session.scalars(sa.select(Consent).where(Consent.customer_id == customer_id))).all()
    quiet = None
    if preference is not None and preference.quiet_start and preference.quiet_end:
        quiet = QuietHoursChoice(start=preference.quiet_start, end=preference.quiet_end)
    channels = {
        channel: ChannelChoice.model_validate(choice)
        for channel, choice in (preference.channels if preference else {}).items()
    }
    return PreferencesRead.model_validate(
        {
            "customer_id": customer_id,
            "channels": channels,
            "quiet_hours": quiet,
            "consents": [
                {"channel": c.channel, "purpose": c.purpose, "granted": c.granted, "changed_at": c.changed_at}
                for c in consents
            ],
        }
    )


async def set_preferences(
    *, session: AsyncSession, customer_id: uuid.UUID, preferences_in: PreferencesUpdate
) -> PreferencesRead:
    if await session.get(Contact, customer_id) is None:
        raise CustomerNotKnown(customer_id)
    preference = await session.get(Preference, customer_id)
    if preference is None:
        preference = Preference(customer_id=customer_id)
        session.add(preference)
    preference.channels = {
        channel.value: choice.model_dump() for channel, choice in preferences_in.channels.items()
    }
    quiet = preferences_in.quiet_hours
    preference.quiet_start = quiet.start.strftime("%H:%M") if quiet else None
    preference.quiet_end = quiet.end.strftime("%H:%M") if quiet else None
    await session.flush()
    return await get_preferences(session=session, customer_id=customer_id)


async def list_webhooks(*, session: AsyncSession) -> list[WebhookEndpoint]:
    return list((await session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.name))).all())


async def put_webhook(
    *, session: AsyncSession, name: str, webhook_in: WebhookWrite, allowed: Sequence[Network]
) -> tuple[WebhookEndpoint, str | None]:
    """Create or change an endpoint; returns it and its secret if one was issued now."""
    try:
        await webhook_targets.resolve_and_check(str(webhook_in.url), allowed, must_resolve=False)
    except webhook_targets.TargetRefused as refused:
        raise WebhookTargetRefused(str(refused)) from None
    endpoint = await session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.name == name))
    issued = None
    if endpoint is None:
        issued = new_webhook_secret()
        endpoint = WebhookEndpoint(
            name=name, url=str(webhook_in.url), secret=issued, enabled=webhook_in.enabled
        )
        session.add(endpoint)
    else:
        endpoint.url, endpoint.enabled = str(webhook_in.url), webhook_in.enabled
        if webhook_in.rotate_secret:
            issued = endpoint.secret = new_webhook_secret()
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise WebhookNameTaken(name) from None
    return endpoint, issued


async def delete_webhook(*, session: AsyncSession, name: str) -> None:
    result = await session.execute(sa.delete(WebhookEndpoint).where(WebhookEndpoint.name == name))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise WebhookNotFound(name)
