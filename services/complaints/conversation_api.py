"""HTTP routes of complaints' conversations and mail: messages, replies, notes, the triage list, files."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from services.complaints import conversation, listing, mail_intake
from services.complaints.deps import (
    Agent,
    AgentOrService,
    ClockDep,
    CurrencyDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    actor_of,
)
from services.complaints.errors import AttachmentNotFound
from services.complaints.models import MailAttachment
from services.complaints.schemas import (
    ComplaintRead,
    ConversationMessageRead,
    NoteCreate,
    ReplyCreate,
    TriagePlacement,
)
from services.complaints.service import check_may_act
from shared.pagination import CursorParam, Limit, Page
from shared.roles import Role

router = APIRouter(tags=["conversation"])


@router.get("/complaints/{complaint_id}/conversation", summary="The complaint's messages, oldest first")
async def list_conversation(
    complaint_id: uuid.UUID,
    user: AgentOrService,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[ConversationMessageRead]:
    """The customer's messages and the agents' replies; internal notes for staff only."""
    found, following = await conversation.messages(
        session=session,
        complaint_id=complaint_id,
        staff=user.role is not Role.service,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[ConversationMessageRead.model_validate(m) for m in found], next_cursor=following)


@router.post(
    "/complaints/{complaint_id}/replies",
    status_code=status.HTTP_201_CREATED,
    summary="Answer the customer (sent by notify on their channel; the first reply is the first response)",
)
async def post_reply(
    complaint_id: uuid.UUID,
    reply_in: ReplyCreate,
    clock: ClockDep,
    currency: CurrencyDep,
    settings: SettingsDep,
    user: Agent,
    *,
    session: SessionDep,
) -> ConversationMessageRead:
    await check_may_act(session=session, complaint_id=complaint_id, principal=user)
    entry = await conversation.reply(
        session=session,
        complaint_id=complaint_id,
        body=reply_in.body,
        subject=reply_in.subject,
        actor=actor_of(user),
        mail_address=settings.mail_address,
        now=clock.now(),
        currency=currency,
    )
    return ConversationMessageRead.model_validate(entry)


@router.post(
    "/complaints/{complaint_id}/notes",
    status_code=status.HTTP_201_CREATED,
    summary="An internal note, for staff only: it never reaches the customer",
)
async def post_note(
    complaint_id: uuid.UUID, note_in: NoteCreate, clock: ClockDep, user: Agent, *, session: SessionDep
) -> ConversationMessageRead:
    await check_may_act(session=session, complaint_id=complaint_id, principal=user)
    entry = await conversation.note(
        session=session, complaint_id=complaint_id, body=note_in.body, actor=actor_of(user), now=clock.now()
    )
    return ConversationMessageRead.model_validate(entry)


@router.get("/mail-triage", summary="Mail nobody could place: from unknown or shared addresses, oldest first")
async def list_triage(
    _user: Agent, limit: Limit = 50, cursor: CursorParam = None, *, session: ReadSessionDep
) -> Page[ConversationMessageRead]:
    found, following = await mail_intake.triaged(session=session, limit=limit, cursor=cursor)
    return Page(items=[ConversationMessageRead.model_validate(m) for m in found], next_cursor=following)


@router.post(
    "/mail-triage/{message_id}/complaint",
    status_code=status.HTTP_201_CREATED,
    summary="Place a triaged mail: it opens a complaint of the customer named",
)
async def place_triaged(
    message_id: uuid.UUID,
    placement_in: TriagePlacement,
    clock: ClockDep,
    currency: CurrencyDep,
    settings: SettingsDep,
    _user: Agent,
    *,
    session: SessionDep,
) -> ComplaintRead:
    complaint = await mail_intake.place(
        session=session,
        message_id=message_id,
        customer_id=placement_in.customer_id,
        settings=settings,
        now=clock.now(),
    )
    [read] = await listing.to_read([complaint], session=session, currency=currency)
    return read


@router.delete(
    "/mail-triage/{message_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Dismiss a triaged mail nobody will place (spam, a wrong address): its content is deleted",
)
async def dismiss_triaged(message_id: uuid.UUID, _user: Agent, *, session: SessionDep) -> None:
    await mail_intake.dismiss(session=session, message_id=message_id)


@router.get(
    "/mail-attachments/{attachment_id}",
    summary="A file that came with a mail",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_attachment(attachment_id: uuid.UUID, _user: Agent, *, session: ReadSessionDep) -> Response:
    attachment = await session.get(MailAttachment, attachment_id)
    if attachment is None:
        raise AttachmentNotFound(attachment_id)
    return Response(
        content=attachment.content,
        media_type=attachment.media_type,
        # Never rendered inline: a file from a stranger's mail is not to run in the staff's browser.
        headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"},
    )
