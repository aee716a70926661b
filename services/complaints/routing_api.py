"""HTTP routes of the routing policy: read it, put a new version in force, and try it dry."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from services.complaints import routing_store
from services.complaints.deps import Agent, ClockDep, Manager, ReadSessionDep, SessionDep, Supervisor
from services.complaints.routing import LanguageTag, RoutingPolicy
from shared import audit
from shared.clock import UtcDatetime
from shared.events.complaints import ComplaintCategory, ComplaintChannel
from shared.events.segmentation import Tier

router = APIRouter(prefix="/routing-policy", tags=["management"])


class RoutingPolicyRead(BaseModel):
    version: int
    created_by: str | None
    created_at: datetime | None
    policy: RoutingPolicy


class RoutingDryRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A draft to try; by default the policy in force.
    policy: RoutingPolicy | None = None
    category: ComplaintCategory
    tier: Tier | None = None
    language: LanguageTag | None = None
    channel: ComplaintChannel
    # When the complaint would arrive (working hours); by default now.
    at: UtcDatetime | None = None


class RoutingOutcome(BaseModel):
    # The version tried; None for a draft.
    version: int | None
    rule: str | None
    team: str | None
    assignee: str | None
    fell_back: bool


@router.get(
    "", summary="The routing policy in force: rules from category, tier, language and channel to teams"
)
async def get_routing_policy(_user: Agent, *, session: ReadSessionDep) -> RoutingPolicyRead:
    version, row, policy = await routing_store.current(session=session)
    return RoutingPolicyRead(
        version=version,
        created_by=row.created_by if row else None,
        created_at=row.created_at if row else None,
        policy=policy,
    )


@router.put("", summary="Put a new version of the routing policy in force (managers)")
async def put_routing_policy(
    policy: RoutingPolicy, clock: ClockDep, user: Manager, *, session: SessionDep
) -> RoutingPolicyRead:
    previous, _, before = await routing_store.current(session=session)
    row = await routing_store.store(session=session, policy=policy, actor=user.subject, now=clock.now())
    await audit.record(
        session,
        actor=user,
        action="routing_policy.put",
        subject_type="routing_policy",
        subject_id=row.version,
        before={"version": previous, "policy": before},
        after={"version": row.version, "policy": policy},
        at=clock.now(),
    )
    return RoutingPolicyRead(
        version=row.version, created_by=row.created_by, created_at=row.created_at, policy=policy
    )


@router.post(
    "/dry-run", summary="Where a complaint would go, under the policy in force or a draft; nothing changes"
)
async def dry_run(
    trial: RoutingDryRun, clock: ClockDep, _user: Supervisor, *, session: ReadSessionDep
) -> RoutingOutcome:
    version: int | None = None
    policy = trial.policy
    if policy is None:
        version, _, policy = await routing_store.current(session=session)
    routed = await routing_store.route(
        session=session,
        policy=policy,
        category=trial.category.value,
        tier=trial.tier.value if trial.tier else None,
        language=trial.language,
        channel=trial.channel.value,
        now=trial.at or clock.now(),
    )
    return RoutingOutcome(
        version=version,
        rule=routed.rule,
        team=routed.team,
        assignee=routed.assignee,
        fell_back=routed.fell_back,
    )
