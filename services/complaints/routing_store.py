"""Where the routing policy is kept (one row per version, the newest in force), and routing itself:
a new complaint goes to the least-loaded person on duty with room in the team its rule names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import directory
from services.complaints.errors import UnknownTeam
from services.complaints.models import Complaint, RoutingPolicyVersion
from services.complaints.routing import DEFAULT_ROUTING, RoutingPolicy
from shared.versioning import add_next_version, latest_version

# Versions never change once written, so a process keeps the documents it has read.
_read: dict[tuple[str, int], RoutingPolicy] = {}


async def current_version(*, session: AsyncSession) -> int:
    return await latest_version(session=session, version=RoutingPolicyVersion.version)


async def at_version(version: int, *, session: AsyncSession) -> RoutingPolicy:
    """The routing policy of ``version`` (0: the shipped default), read once per process."""
    if version == 0:
        return DEFAULT_ROUTING
    key = (str(session.get_bind().engine.url), version)
    if key not in _read:
        row = await session.get(RoutingPolicyVersion, version)
        if row is None:
            return DEFAULT_ROUTING
        _read[key] = RoutingPolicy.model_validate(row.document)
    return _read[key]


async def current(*, session: AsyncSession) -> tuple[int, RoutingPolicyVersion | None, RoutingPolicy]:
    """The version in force, its row (None for the shipped default) and the policy."""
    version = await current_version(session=session)
    row = await session.get(RoutingPolicyVersion, version) if version else None
    return version, row, RoutingPolicy.model_validate(row.document) if row else DEFAULT_ROUTING


async def store(
    *, session: AsyncSession, policy: RoutingPolicy, actor: str, now: datetime
) -> RoutingPolicyVersion:
    """Store the next version, once every team it names is in the directory; a concurrent store is a 409."""
    for field, team in policy.teams():
        if await directory.find_team(session=session, name=team) is None:
            raise UnknownTeam(team, field=field)
    return await add_next_version(
        lambda version: RoutingPolicyVersion(
            version=version, document=policy.model_dump(mode="json"), created_by=actor, created_at=now
        ),
        session=session,
        version=RoutingPolicyVersion.version,
    )


@dataclass(frozen=True)
class Routed:
    """Where a complaint goes: the rule that matched, the team tried last, and the person (None: nobody)."""

    rule: str | None
    team: str | None
    assignee: str | None
    fell_back: bool


async def route(
    *,
    session: AsyncSession,
    policy: RoutingPolicy,
    category: str,
    tier: str | None,
    language: str | None,
    channel: str,
    now: datetime,
) -> Routed:
    rule = policy.rule_for(category=category, tier=tier, language=language, channel=channel)
    if rule is None:
        return Routed(rule=None, team=None, assignee=None, fell_back=False)
    picked = await directory.pick_in_team(
        session=session, team=rule.team, now=now, skill=rule.skill, language=language
    )
    if picked is not None or policy.fallback_team is None or policy.fallback_team == rule.team:
        return Routed(rule=rule.name, team=rule.team, assignee=picked, fell_back=False)
    # The fallback team takes anything it can: neither the rule's skill nor the language is asked of it.
    picked = await directory.pick_in_team(session=session, team=policy.fallback_team, now=now)
    return Routed(rule=rule.name, team=policy.fallback_team, assignee=picked, fell_back=True)


async def route_new(*, session: AsyncSession, complaint: Complaint, version: int, now: datetime) -> Routed:
    """Assign a new complaint by the policy of ``version`` (the one in force, which intake has read);
    with no rule or nobody free it stays unassigned."""
    routed = await route(
        session=session,
        policy=await at_version(version, session=session),
        category=complaint.category,
        tier=complaint.tier,
        language=complaint.language,
        channel=complaint.channel,
        now=now,
    )
    if routed.assignee is not None:
        complaint.assignee = routed.assignee
    return routed
