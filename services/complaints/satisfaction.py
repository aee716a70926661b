"""Satisfaction: the survey answer on a resolved complaint; a poor one reopens it for a follow-up."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import resolution, service
from services.complaints.errors import AlreadyRated, NothingToRate
from services.complaints.models import Survey
from services.complaints.schemas import SurveyCreate
from services.complaints.workflow import Status
from shared.events.complaints import SurveyAnswered
from shared.outbox import stage
from shared.pagination import keyset_page

# The reopen a poor answer causes is the survey's doing, not a staff response.
SURVEY_ACTOR = service.Actor(subject="survey", staff=False)


async def answer(
    *, session: AsyncSession, complaint_id: uuid.UUID, survey_in: SurveyCreate, now: datetime, currency: str
) -> Survey:
    complaint = await service.get(session=session, complaint_id=complaint_id, lock=True)
    if Status(complaint.status) not in (Status.resolved, Status.closed):
        raise NothingToRate(complaint.status)
    answered = await session.scalar(
        sa.select(Survey.id).where(Survey.complaint_id == complaint.id, Survey.cycle == complaint.cycle)
    )
    if answered is not None:
        raise AlreadyRated()
    policy = await service.policy_of(complaint, session=session, currency=currency)
    poor = policy.is_poor(survey_in.csat, survey_in.nps)
    survey = Survey(
        id=uuid.uuid4(),
        complaint_id=complaint.id,
        cycle=complaint.cycle,
        csat=survey_in.csat,
        nps=survey_in.nps,
        comment=survey_in.comment,
        poor=poor,
        answered_at=now,
    )
    session.add(survey)
    await session.flush()
    stage(
        SurveyAnswered(
            customer_id=complaint.customer_id,
            complaint_id=complaint.id,
            csat=survey_in.csat,
            nps=survey_in.nps,
            poor=poor,
            answered_at=now,
        ),
        session=session,
        source=service.SOURCE,
        time=now,
    )
    if poor:
        await resolution.reopen(
            session=session,
            complaint=complaint,
            reason=f"poor survey answer (CSAT {survey_in.csat})",
            actor=SURVEY_ACTOR,
            now=now,
            currency=currency,
        )
    return survey


async def surveys_of(
    *, session: AsyncSession, complaint_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Survey], str | None]:
    await service.get(session=session, complaint_id=complaint_id)
    return await keyset_page(
        sa.select(Survey).where(Survey.complaint_id == complaint_id),
        session=session,
        order=[Survey.cycle],
        limit=limit,
        cursor=cursor,
    )
