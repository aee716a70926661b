"""HTTP routes of canned replies: supervisors keep them, agents read them and preview them on a complaint."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from services.complaints import macros
from services.complaints.deps import Agent, ClockDep, ReadSessionDep, SessionDep, Supervisor
from services.complaints.macro_schemas import MacroPreview, MacroPreviewCreate, MacroRead, MacroWrite
from shared import audit
from shared.pagination import CursorParam, Limit, Page

router = APIRouter(prefix="/macros", tags=["macros"])


@router.get("", summary="Canned replies, by name")
async def list_macros(
    _user: Agent, limit: Limit = 50, cursor: CursorParam = None, *, session: ReadSessionDep
) -> Page[MacroRead]:
    found, following = await macros.list_macros(session=session, limit=limit, cursor=cursor)
    return Page(items=[MacroRead.model_validate(macro) for macro in found], next_cursor=following)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a canned reply (supervisors)")
async def create_macro(
    macro_in: MacroWrite, clock: ClockDep, user: Supervisor, *, session: SessionDep
) -> MacroRead:
    macro = await macros.create(session=session, macro_in=macro_in, actor=user.subject, now=clock.now())
    after = MacroRead.model_validate(macro)
    await audit.record(
        session,
        actor=user,
        action="macro.create",
        subject_type="macro",
        subject_id=macro.id,
        after=after,
        at=clock.now(),
    )
    return after


@router.get("/{macro_id}", summary="One canned reply")
async def get_macro(macro_id: uuid.UUID, _user: Agent, *, session: ReadSessionDep) -> MacroRead:
    return MacroRead.model_validate(await macros.get_macro(session=session, macro_id=macro_id))


@router.put("/{macro_id}", summary="Change a canned reply (supervisors)")
async def replace_macro(
    macro_id: uuid.UUID, macro_in: MacroWrite, clock: ClockDep, user: Supervisor, *, session: SessionDep
) -> MacroRead:
    before = MacroRead.model_validate(await macros.get_macro(session=session, macro_id=macro_id))
    macro = await macros.replace(
        session=session, macro_id=macro_id, macro_in=macro_in, actor=user.subject, now=clock.now()
    )
    after = MacroRead.model_validate(macro)
    await audit.record(
        session,
        actor=user,
        action="macro.replace",
        subject_type="macro",
        subject_id=macro_id,
        before=before,
        after=after,
        at=clock.now(),
    )
    return after


@router.delete(
    "/{macro_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a canned reply (supervisors)",
)
async def delete_macro(
    macro_id: uuid.UUID, clock: ClockDep, user: Supervisor, *, session: SessionDep
) -> None:
    before = MacroRead.model_validate(await macros.get_macro(session=session, macro_id=macro_id))
    await macros.delete(session=session, macro_id=macro_id)
    await audit.record(
        session,
        actor=user,
        action="macro.delete",
        subject_type="macro",
        subject_id=macro_id,
        before=before,
        at=clock.now(),
    )


@router.post("/{macro_id}/preview", summary="The canned reply rendered for a complaint, in its language")
async def preview_macro(
    macro_id: uuid.UUID, preview_in: MacroPreviewCreate, user: Agent, *, session: ReadSessionDep
) -> MacroPreview:
    language, text = await macros.preview(
        session=session,
        macro_id=macro_id,
        complaint_id=preview_in.complaint_id,
        language=preview_in.language,
        principal=user,
    )
    return MacroPreview(macro_id=macro_id, complaint_id=preview_in.complaint_id, language=language, text=text)
