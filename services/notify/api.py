"""HTTP routes of the notify service: thin, the work is in the service modules."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Response

from services.notify import announcements, dryrun, policy_store, service, tasks
from services.notify.deps import (
    Admin,
    Agent,
    AgentOrService,
    ClockDep,
    Manager,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
)
from services.notify.errors import AnnouncementNotFound, PlaybookNotFound
from services.notify.models import Notification, WebhookEndpoint
from services.notify.playbooks import PlaybookDefinition
from services.notify.policy import PolicyDocument
from services.notify.policy_store import Playbook
from services.notify.schemas import (
    AnnouncementCreate,
    AnnouncementRead,
    DryRunRead,
    DryRunRequest,
    NotificationRead,
    PlaybookRead,
    PolicyRead,
    PreferencesRead,
    PreferencesUpdate,
    TaskCompletion,
    TaskRead,
    WebhookRead,
    WebhookWrite,
)
from services.notify.settings import NotifySettings
from shared import audit
from shared.auth import Principal
from shared.clock import UtcDatetime
from shared.events.customer import ContactChannel
from shared.pagination import CursorParam, Limit, Page
from shared.roles import Role

notifications = APIRouter(prefix="/notifications", tags=["notifications"])
customers = APIRouter(prefix="/customers", tags=["preferences"])
playbooks = APIRouter(prefix="/playbooks", tags=["playbooks"])
policy = APIRouter(prefix="/policy", tags=["playbooks"])
staff_tasks = APIRouter(prefix="/tasks", tags=["tasks"])
announcement_routes = APIRouter(prefix="/announcements", tags=["announcements"])
webhooks = APIRouter(prefix="/webhooks", tags=["webhooks"])

PlaybookKey = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,59}$", description="e.g. first_purchase_care")]
WebhookName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
Status = Literal["pending", "sending", "sent", "failed", "suppressed"]


@notifications.get("", summary="Messages, newest first: a customer's, or by channel, status or playbook")
async def list_notifications(
    _who: AgentOrService,
    customer_id: uuid.UUID | None = None,
    channel: Annotated[
        ContactChannel | None, Query(description="in_app: what a customer's app shows")
    ] = None,
    status: Status | None = None,
    playbook: Annotated[str | None, Query(max_length=100)] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
    *,
    session: ReadSessionDep,
) -> Page[NotificationRead]:
    found, next_cursor = await service.list_notifications(
        session=session,
        customer_id=customer_id,
        channel=channel.value if channel else None,
        status=status,
        playbook=playbook,
        limit=limit,
        cursor=cursor,
    )
    return Page[NotificationRead](items=[_as_seen_by(_who, n) for n in found], next_cursor=next_cursor)


@notifications.get("/{notification_id}", summary="One message and its delivery status")
async def get_notification(
    notification_id: uuid.UUID, _who: AgentOrService, *, session: ReadSessionDep
) -> NotificationRead:
    return _as_seen_by(_who, await service.get_notification(session=session, notification_id=notification_id))


@notifications.post("/{notification_id}/read", summary="The customer's app showed this in-app message")
async def mark_read(
    notification_id: uuid.UUID, clock: ClockDep, _who: AgentOrService, *, session: SessionDep
) -> NotificationRead:
    found = await service.mark_read(session=session, notification_id=notification_id, now=clock.now())
    return _as_seen_by(_who, found)


WEBHOOK_FAILURE_HIDDEN = "the webhook target did not accept it (details for admins)"


def _as_seen_by(who: Principal, notification: Notification) -> NotificationRead:
    """What a webhook target answered is for admins only: to anyone else it would map the network."""
    read = NotificationRead.model_validate(notification)
    if read.channel is ContactChannel.webhook and read.last_error and who.role is not Role.admin:
        read.last_error = WEBHOOK_FAILURE_HIDDEN
    return read


@customers.get(
    "/{customer_id}/preferences", summary="The customer's channel choices, quiet hours and consents"
)
async def get_preferences(
    customer_id: uuid.UUID, _who: AgentOrService, *, session: ReadSessionDep
) -> PreferencesRead:
    return await service.get_preferences(session=session, customer_id=customer_id)


@customers.put("/{customer_id}/preferences", summary="Replace the customer's channel choices and quiet hours")
async def put_preferences(
    customer_id: uuid.UUID, preferences_in: PreferencesUpdate, _who: AgentOrService, *, session: SessionDep
) -> PreferencesRead:
    return await service.set_preferences(
        session=session, customer_id=customer_id, preferences_in=preferences_in
    )


def _playbook_read(playbook: Playbook) -> PlaybookRead:
    return PlaybookRead(
        key=playbook.key,
        version=playbook.version,
        created_by=playbook.created_by,
        created_at=playbook.created_at,
        definition=playbook.definition,
    )


@playbooks.get("", summary="Every playbook in force (its highest version)")
async def list_playbooks(_who: Agent, *, session: ReadSessionDep) -> list[PlaybookRead]:
    return [_playbook_read(p) for _, p in sorted((await policy_store.in_force(session=session)).items())]


@playbooks.post(
    "/dry-run", summary="What an event, period or announcement would cause; nothing is written or sent"
)
async def dry_run(
    request: DryRunRequest, clock: ClockDep, runtime: RuntimeDep, _who: Agent, *, session: ReadSessionDep
) -> DryRunRead:
    settings = cast(NotifySettings, runtime.settings)
    return await dryrun.dry_run(session=session, request=request, settings=settings, now=clock.now())


@playbooks.get("/{key}", summary="A playbook in force")
async def get_playbook(key: PlaybookKey, _who: Agent, *, session: ReadSessionDep) -> PlaybookRead:
    found = (await policy_store.in_force(session=session)).get(key)
    if found is None:
        raise PlaybookNotFound(key)
    return _playbook_read(found)


@playbooks.get("/{key}/versions", summary="Every version of a playbook, newest first")
async def playbook_versions(key: PlaybookKey, _who: Agent, *, session: ReadSessionDep) -> list[PlaybookRead]:
    found = await policy_store.history(key, session=session)
    if not found:
        raise PlaybookNotFound(key)
    return [_playbook_read(p) for p in found]


@playbooks.put(
    "/{key}", summary="Save a new version of a playbook (or a new playbook); it is in force at once"
)
async def put_playbook(
    key: PlaybookKey, definition: PlaybookDefinition, clock: ClockDep, who: Manager, *, session: SessionDep
) -> PlaybookRead:
    current = (await policy_store.in_force(session=session)).get(key)
    if current is not None and current.definition == definition:
        return _playbook_read(current)
    saved = await policy_store.save(
        session=session, key=key, definition=definition, actor=who.subject, now=clock.now()
    )
    await audit.record(
        session,
        actor=who,
        action="playbook.put",
        subject_type="playbook",
        subject_id=key,
        before=_playbook_read(current) if current is not None else None,
        after=_playbook_read(saved),
        at=clock.now(),
    )
    return _playbook_read(saved)


@policy.get("", summary="The follow-up policy in force: quiet hours, marketing cap, offers")
async def get_policy(_who: Agent, *, session: ReadSessionDep) -> PolicyRead:
    found = await policy_store.policy(session=session)
    return PolicyRead(
        version=found.version, created_by=found.created_by, created_at=found.created_at, policy=found.policy
    )


@policy.put("", summary="Save a new version of the policy; it is in force at once")
async def put_policy(
    document: PolicyDocument, clock: ClockDep, who: Manager, *, session: SessionDep
) -> PolicyRead:
    before = await policy_store.policy(session=session)
    saved = await policy_store.save_policy(
        session=session, document=document, actor=who.subject, now=clock.now()
    )
    await audit.record(
        session,
        actor=who,
        action="notify_policy.put",
        subject_type="notify_policy",
        subject_id=saved.version,
        before={"version": before.version, "policy": before.policy},
        after={"version": saved.version, "policy": saved.policy},
        at=clock.now(),
    )
    return PolicyRead(
        version=saved.version, created_by=saved.created_by, created_at=saved.created_at, policy=saved.policy
    )


@staff_tasks.get("", summary="Staff tasks, soonest due first")
async def list_tasks(
    _who: Agent,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    assignee_role: Literal["agent", "supervisor", "manager", "admin"] | None = None,
    customer_id: uuid.UUID | None = None,
    status: Literal["open", "claimed", "done"] | None = None,
    due_before: UtcDatetime | None = None,
    due_after: UtcDatetime | None = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
    *,
    session: ReadSessionDep,
) -> Page[TaskRead]:
    where = tasks.TaskFilter(
        assignee=assignee,
        assignee_role=assignee_role,
        customer_id=customer_id,
        status=status,
        due_before=due_before,
        due_after=due_after,
    )
    found, next_cursor = await tasks.list_tasks(session=session, where=where, limit=limit, cursor=cursor)
    return Page[TaskRead](items=[TaskRead.model_validate(t) for t in found], next_cursor=next_cursor)


@staff_tasks.get("/{task_id}", summary="One task")
async def get_task(task_id: uuid.UUID, _who: Agent, *, session: ReadSessionDep) -> TaskRead:
    return TaskRead.model_validate(await tasks.get(session=session, task_id=task_id))


@staff_tasks.post("/{task_id}/claim", summary="Take a task: it is yours until done")
async def claim_task(task_id: uuid.UUID, clock: ClockDep, who: Agent, *, session: SessionDep) -> TaskRead:
    return TaskRead.model_validate(
        await tasks.claim(session=session, task_id=task_id, who=who, now=clock.now())
    )


@staff_tasks.post("/{task_id}/complete", summary="Finish a task, saying what came of it")
async def complete_task(
    task_id: uuid.UUID, completion: TaskCompletion, clock: ClockDep, who: Agent, *, session: SessionDep
) -> TaskRead:
    done = await tasks.complete(
        session=session, task_id=task_id, who=who, outcome=completion.outcome, now=clock.now()
    )
    return TaskRead.model_validate(done)


@announcement_routes.post(
    "", status_code=202, summary="Announce news on a topic to every customer interested in it"
)
async def create_announcement(
    announcement_in: AnnouncementCreate, clock: ClockDep, who: Manager, *, session: SessionDep
) -> AnnouncementRead:
    created = await announcements.create(
        session=session,
        topic=announcement_in.topic,
        title=announcement_in.title,
        body=announcement_in.body,
        playbook=announcement_in.playbook,
        actor=who.subject,
        now=clock.now(),
    )
    return AnnouncementRead.model_validate(created)


@announcement_routes.get("/{announcement_id}", summary="An announcement and how far matching has got")
async def get_announcement(
    announcement_id: uuid.UUID, _who: Agent, *, session: ReadSessionDep
) -> AnnouncementRead:
    found = await announcements.get(session=session, announcement_id=announcement_id)
    if found is None:
        raise AnnouncementNotFound()
    return AnnouncementRead.model_validate(found)


@webhooks.get("", summary="Registered webhook endpoints (secrets are never shown again)")
async def list_webhooks(_who: Admin, *, session: ReadSessionDep) -> list[WebhookRead]:
    return [
        WebhookRead(
            name=e.name, url=e.url, enabled=e.enabled, created_at=e.created_at, updated_at=e.updated_at
        )
        for e in await service.list_webhooks(session=session)
    ]


@webhooks.put("/{name}", summary="Register or change a webhook endpoint; a new one gets a signing secret")
async def put_webhook(
    name: WebhookName,
    webhook_in: WebhookWrite,
    runtime: RuntimeDep,
    clock: ClockDep,
    who: Admin,
    *,
    session: SessionDep,
) -> WebhookRead:
    allowed = cast(NotifySettings, runtime.settings).webhook_allowed_networks
    found = await session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.name == name))
    before = _audited_webhook(found) if found is not None else None
    endpoint, secret = await service.put_webhook(
        session=session, name=name, webhook_in=webhook_in, allowed=allowed
    )
    await audit.record(
        session,
        actor=who,
        action="webhook.put",
        subject_type="webhook",
        subject_id=name,
        before=before,
        after=_audited_webhook(endpoint),
        at=clock.now(),
    )
    return WebhookRead(
        name=endpoint.name,
        url=endpoint.url,
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
        secret=secret,
    )


@webhooks.delete("/{name}", status_code=204, summary="Remove a webhook endpoint")
async def delete_webhook(name: WebhookName, clock: ClockDep, who: Admin, *, session: SessionDep) -> Response:
    found = await session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.name == name))
    before = _audited_webhook(found) if found is not None else None
    await service.delete_webhook(session=session, name=name)
    await audit.record(
        session,
        actor=who,
        action="webhook.delete",
        subject_type="webhook",
        subject_id=name,
        before=before,
        at=clock.now(),
    )
    return Response(status_code=204)


def _audited_webhook(endpoint: WebhookEndpoint) -> dict[str, object]:
    """What the log keeps of an endpoint: where it points, not its path (a chat hook's path is its key)
    nor its signing secret."""
    url = urlsplit(endpoint.url)
    return {"origin": f"{url.scheme}://{url.netloc.rpartition('@')[2]}", "enabled": endpoint.enabled}


ROUTERS = [notifications, customers, playbooks, policy, staff_tasks, announcement_routes, webhooks]
