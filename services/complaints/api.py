"""HTTP routes of the complaints service."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from services.complaints import service
from services.complaints.deps import AgentOrService, ClockDep, ReadSessionDep, SessionDep
from services.complaints.schemas import ComplaintCreate, ComplaintRead

router = APIRouter(prefix="/complaints", tags=["complaints"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Take a complaint")
async def open_complaint(
    complaint_in: ComplaintCreate, session: SessionDep, clock: ClockDep, user: AgentOrService
) -> ComplaintRead:
    complaint = await service.open_complaint(
        session=session, complaint_in=complaint_in, first_owner=user.subject, now=clock.now()
    )
    return ComplaintRead.model_validate(complaint)


@router.get("/{complaint_id}", summary="One complaint")
async def get_complaint(complaint_id: uuid.UUID, session: ReadSessionDep, _user: AgentOrService) -> ComplaintRead:
    return ComplaintRead.model_validate(await service.get(session=session, complaint_id=complaint_id))
