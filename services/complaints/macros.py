"""Canned replies (macros): one template per language, with placeholders from the customer and the
complaint, kept by supervisors and read by agents; rendered in the shared sandbox on its budget.

A macro is checked when it is saved by rendering every language against a sample complaint, so a
placeholder that does not exist (``{{ complaint.refrence }}``) is refused then, not in front of a
customer. The placeholders:

- ``customer``: ``id``, ``tier`` (``None`` while unknown), ``key_account``;
- ``complaint``: ``id``, ``reference`` (the first eight characters of the id), ``category`` and
  ``category_label`` (in the reply's language), ``channel``, ``severity``, ``status``,
  ``description``, ``desired_outcome``, ``opened_at``, ``first_response_due_at``,
  ``resolution_due_at``, ``first_owner``, ``assignee``;
- ``agent``: ``subject`` and ``name`` of whoever uses the macro (the directory's name, else the token's);
- ``language`` and ``time_zone``, which the ``localtime`` and ``duration`` filters follow.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import directory
from services.complaints.errors import MacroDoesNotRender, MacroNameTaken, MacroNotFound
from services.complaints.macro_schemas import MacroWrite
from services.complaints.models import Complaint, Macro, SlaClock
from services.complaints.service import get
from shared import templates
from shared.auth import Principal
from shared.events.complaints import SlaTarget
from shared.pagination import keyset_page

DEFAULT_LANGUAGE = "zh-CN"
DEFAULT_TIME_ZONE = "Asia/Shanghai"

CATEGORY_LABELS = {
    "zh": {
        "product_quality": "产品质量",
        "delivery": "配送",
        "billing": "账单",
        "staff_attitude": "服务态度",
        "installation_after_sales": "安装与售后",
        "other": "其他",
    },
    "en": {
        "product_quality": "product quality",
        "delivery": "delivery",
        "billing": "billing",
        "staff_attitude": "staff attitude",
        "installation_after_sales": "installation and after-sales service",
        "other": "other",
    },
}

_SAMPLE_TIME = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def _category_label(category: str, language: str) -> str:
    return CATEGORY_LABELS.get(language, CATEGORY_LABELS["en"]).get(category, category)


def _context(
    *,
    complaint: dict[str, Any],
    customer: dict[str, Any],
    agent: dict[str, Any],
    language_tag: str,
    time_zone: str,
) -> dict[str, Any]:
    language = templates.language_of(language_tag)
    return {
        "complaint": {**complaint, "category_label": _category_label(complaint["category"], language)},
        "customer": customer,
        "agent": agent,
        "language": language,
        "time_zone": time_zone,
    }


def sample_context(language_tag: str) -> dict[str, Any]:
    """A complaint with every placeholder set, to try a macro on when it is saved."""
    complaint_id = uuid.UUID(int=0)
    return _context(
        complaint={
            "id": str(complaint_id),
            "reference": str(complaint_id)[:8],
            "category": "delivery",
            "channel": "phone",
            "severity": "normal",
            "status": "acknowledged",
            "description": "The parcel arrived a week late.",
            "desired_outcome": "A refund of the shipping fee.",
            "opened_at": _SAMPLE_TIME,
            "first_response_due_at": _SAMPLE_TIME,
            "resolution_due_at": _SAMPLE_TIME,
            "first_owner": "agent-1",
            "assignee": None,
        },
        customer={"id": str(uuid.UUID(int=1)), "tier": "gold", "key_account": False},
        agent={"subject": "agent-1", "name": "Agent"},
        language_tag=language_tag,
        time_zone=DEFAULT_TIME_ZONE,
    )


def _check(macro_in: MacroWrite) -> None:
    for tag, body in macro_in.bodies.items():
        try:
            templates.render(body, sample_context(tag))
        except templates.TemplateProblem as problem:
            raise MacroDoesNotRender(
                f"The {tag} text does not render: {problem}", field=f"bodies.{tag}"
            ) from None


async def _named(*, session: AsyncSession, name: str, other_than: uuid.UUID | None = None) -> None:
    query = sa.select(Macro.id).where(Macro.name == name)
    if other_than is not None:
        query = query.where(Macro.id != other_than)
    if await session.scalar(query) is not None:
        raise MacroNameTaken(name)


async def _flush_unique(*, session: AsyncSession, name: str) -> None:
    """Flush in a savepoint, so that a name taken at the same moment by another request is a 409."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise MacroNameTaken(name) from None


async def create(*, session: AsyncSession, macro_in: MacroWrite, actor: str, now: datetime) -> Macro:
    _check(macro_in)
    await _named(session=session, name=macro_in.name)
    macro = Macro(
        name=macro_in.name,
        title=macro_in.title,
        bodies=dict(macro_in.bodies),
        created_by=actor,
        updated_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(macro)
    await _flush_unique(session=session, name=macro_in.name)
    return macro


async def get_macro(*, session: AsyncSession, macro_id: uuid.UUID) -> Macro:
    macro = await session.get(Macro, macro_id)
    if macro is None:
        raise MacroNotFound(macro_id)
    return macro


async def replace(
    *, session: AsyncSession, macro_id: uuid.UUID, macro_in: MacroWrite, actor: str, now: datetime
) -> Macro:
    macro = await get_macro(session=session, macro_id=macro_id)
    _check(macro_in)
    await _named(session=session, name=macro_in.name, other_than=macro_id)
    macro.name, macro.title, macro.bodies = macro_in.name, macro_in.title, dict(macro_in.bodies)
    macro.updated_by, macro.updated_at = actor, now
    await _flush_unique(session=session, name=macro_in.name)
    return macro


async def delete(*, session: AsyncSession, macro_id: uuid.UUID) -> None:
    await session.delete(await get_macro(session=session, macro_id=macro_id))
    await session.flush()


async def list_macros(
    *, session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[Macro], str | None]:
    return await keyset_page(
        sa.select(Macro), session=session, order=[Macro.name], limit=limit, cursor=cursor
    )


async def _due_times(*, session: AsyncSession, complaint: Complaint) -> dict[str, datetime | None]:
    rows = await session.execute(
        sa.select(SlaClock.target, SlaClock.due_at).where(
            SlaClock.complaint_id == complaint.id, SlaClock.cycle == complaint.cycle
        )
    )
    return {row.target: row.due_at for row in rows}


async def preview(
    *,
    session: AsyncSession,
    macro_id: uuid.UUID,
    complaint_id: uuid.UUID,
    language: str | None,
    principal: Principal,
) -> tuple[str, str]:
    """The macro rendered for a complaint: the language chosen and the text.

    The language is the one asked for, else the first the agent speaks (from the directory), else
    Chinese; whichever is nearest among the macro's texts.
    """
    macro = await get_macro(session=session, macro_id=macro_id)
    complaint = await get(session=session, complaint_id=complaint_id)
    person = await directory.find_person(session=session, subject=principal.subject)
    wanted = language or (person.languages[0] if person and person.languages else None)
    tag = templates.pick_locale(macro.bodies, wanted, DEFAULT_LANGUAGE)
    due = await _due_times(session=session, complaint=complaint)
    context = _context(
        complaint={
            "id": str(complaint.id),
            "reference": str(complaint.id)[:8],
            "category": complaint.category,
            "channel": complaint.channel,
            "severity": complaint.severity,
            "status": complaint.status,
            "description": complaint.description,
            "desired_outcome": complaint.desired_outcome,
            "opened_at": complaint.opened_at,
            "first_response_due_at": due.get(SlaTarget.first_response.value),
            "resolution_due_at": due.get(SlaTarget.resolution.value),
            "first_owner": complaint.first_owner,
            "assignee": complaint.assignee,
        },
        customer={
            "id": str(complaint.customer_id),
            "tier": complaint.tier,
            "key_account": complaint.key_account,
        },
        agent={
            "subject": principal.subject,
            "name": person.display_name if person else (principal.name or principal.subject),
        },
        language_tag=tag,
        time_zone=person.time_zone if person else DEFAULT_TIME_ZONE,
    )
    try:
        return tag, templates.render(macro.bodies[tag], context)
    except templates.TemplateProblem as problem:
        raise MacroDoesNotRender(
            f"The {tag} text does not render: {problem}", field=f"bodies.{tag}"
        ) from None
