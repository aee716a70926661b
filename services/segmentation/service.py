"""Keeping each customer's assessment current, one event at a time, and announcing what changed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation.assessment import NO_CUT_POINTS, Assessment, CutPoints, Facts, assess
from services.segmentation.errors import SegmentNotFound
from services.segmentation.models import (
    CustomerSegment,
    SegmentationState,
    TierChange,
)
from services.segmentation.policy import Policy
from services.segmentation.policy_store import load_cut_points, load_policy
from shared.db import ordered_id
from shared.events import Envelope
from shared.events.customer import PurchaseRecorded
from shared.events.segmentation import (
    ChurnRisk,
    LoyaltyStage,
    MoveCause,
    RiskChanged,
    Tier,
    TierChanged,
    ValueGroup,
    tier_rank,
)
from shared.money import to_minor
from shared.outbox import stage
from shared.pagination import keyset_page

SOURCE = "/csm/segmentation"
STATE_ID = 1


@dataclass(frozen=True)
class Context:
    """The policy and cut points in force, the start of the window the figures count, and the
    pinned analysis date (None: now) that everything is figured as of."""

    policy_version: int
    policy: Policy
    cut_points: CutPoints
    window_start: datetime | None
    as_of: datetime | None = None

    def moment(self, now: datetime) -> datetime:
        """When customers are assessed: the pinned analysis date, else now."""
        return self.as_of if self.as_of is not None else now

    def counts(self, moment: datetime) -> bool:
        """Whether something that happened at ``moment`` is in the figures: not after the analysis date."""
        return self.as_of is None or moment <= self.as_of

    def in_window(self, moment: datetime) -> bool:
        return self.counts(moment) and (self.window_start is None or moment >= self.window_start)


class Segmenter:
    """Caches the policy and cut points in force; one small read per batch tells whether they moved."""

    def __init__(self) -> None:
        self._policy: tuple[int, Policy] | None = None
        self._cut_points: CutPoints = NO_CUT_POINTS

    async def context(self, *, session: AsyncSession) -> Context:
        state = await session.get(SegmentationState, STATE_ID, populate_existing=True)
        if state is None:
            raise RuntimeError("segmentation_state is missing: run the migrations")
        if self._policy is None or self._policy[0] != state.policy_version:
            self._policy = (state.policy_version, await load_policy(state.policy_version, session=session))
        if self._cut_points.version != state.cut_points_version:
            self._cut_points = await load_cut_points(state.cut_points_version, session=session)
        return Context(self._policy[0], self._policy[1], self._cut_points, state.window_start, state.as_of)


def facts_of(segment: CustomerSegment) -> Facts:
    return Facts(
        frequency=segment.frequency,
        monetary_minor=segment.monetary_minor,
        lifetime_frequency=segment.lifetime_frequency,
        first_purchase_at=segment.first_purchase_at,
        last_purchase_at=segment.last_purchase_at,
        engaged=segment.engaged,
        last_nps=segment.last_nps,
        signal_points=segment.signal_points,
        key_account=segment.key_account,
        purchase_days=segment.purchase_days,
    )


def _store(segment: CustomerSegment, verdict: Assessment, ctx: Context, now: datetime) -> None:
    segment.tier = verdict.tier.value
    segment.tier_rule = verdict.rule[:200]
    scores = verdict.scores or (None, None, None)
    segment.recency_score, segment.frequency_score, segment.monetary_score = scores
    segment.rfm_segment = verdict.segment.value if verdict.segment else None
    segment.abc_class = verdict.abc_class.value if verdict.abc_class else None
    segment.value_group = verdict.value_group.value if verdict.value_group else None
    segment.stage = verdict.stage.value
    segment.risk = verdict.risk.value
    segment.risk_reason = verdict.risk_reason[:200]
    segment.policy_version = ctx.policy_version
    segment.cut_points_version = ctx.cut_points.version
    segment.updated_at = now


def new_segment(
    customer_id: uuid.UUID,
    ctx: Context,
    now: datetime,
    make: Callable[..., CustomerSegment] = CustomerSegment,
    verdict: Assessment | None = None,
) -> CustomerSegment:
    """A customer first heard of now, assessed; ``make`` builds the row (an ORM object by default).

    Everyone new is assessed alike, so a caller making many may pass ``blank_verdict(ctx, now)``.
    """
    segment = make(customer_id=customer_id, created_at=now, **_NOTHING_KNOWN)
    verdict = verdict or assess(facts_of(segment), ctx.policy, ctx.cut_points, ctx.moment(now))
    _store(segment, verdict, ctx, now)
    segment.initial_tier = segment.tier
    return segment


# A new customer's figures; everything else about them is unknown (None).
_NOTHING_KNOWN = dict(
    frequency=0,
    monetary_minor=0,
    lifetime_frequency=0,
    lifetime_monetary_minor=0,
    purchase_days=0,
    engaged=False,
    signal_points=0.0,
    key_account=False,
)


def blank_verdict(ctx: Context, now: datetime) -> Assessment:
    """Where a customer of whom nothing is known yet stands (what ``new_segment`` assesses)."""
    return assess(facts_of(CustomerSegment(**_NOTHING_KNOWN)), ctx.policy, ctx.cut_points, ctx.moment(now))


def purchase_day(moment: datetime) -> date:
    """The (UTC) day of a purchase: the models' unit of transaction."""
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()


def count_purchase(
    segment: CustomerSegment,
    purchase: PurchaseRecorded,
    ctx: Context,
    *,
    new_day: bool,
) -> None:
    """Count a purchase into the customer's figures (the caller keeps it in the ledger).

    ``new_day``: whether the ledger held no other purchase of theirs (not refunded in full) on its day.
    A purchase after a pinned analysis date is kept in the ledger only: the figures are as of
    that date, and count it once the date is cleared (the recompute rebuilds them from the ledger).
    """
    amount = to_minor(purchase.amount)
    if not ctx.counts(purchase.purchased_at):
        return
    segment.lifetime_frequency += 1
    if new_day:
        segment.purchase_days += 1
    segment.lifetime_monetary_minor += amount
    if ctx.in_window(purchase.purchased_at):
        segment.frequency += 1
        segment.monetary_minor += amount
    if segment.first_purchase_at is None or purchase.purchased_at < segment.first_purchase_at:
        segment.first_purchase_at = purchase.purchased_at
    if segment.last_purchase_at is None or purchase.purchased_at > segment.last_purchase_at:
        segment.last_purchase_at = purchase.purchased_at


@dataclass(frozen=True)
class Change:
    """Old and new values of what segmentation announces about a customer."""

    tier: tuple[str, str]
    segment: tuple[str | None, str | None]
    stage: tuple[str, str]
    key_account: tuple[bool, bool]
    risk: tuple[str, str]

    def dimensions(self) -> list[str]:
        return [
            name
            for name in ("tier", "segment", "stage", "key_account", "risk")
            if getattr(self, name)[0] != getattr(self, name)[1]
        ]


def describe_change(change: Change, verdict: Assessment, cause_type: str | None) -> str:
    parts = []
    old_tier, new_tier = Tier(change.tier[0]), Tier(change.tier[1])
    if old_tier != new_tier:
        direction = "up" if tier_rank(new_tier) < tier_rank(old_tier) else "down"
        parts.append(f"moved {direction} to {verdict.rule}")
    if change.segment[0] != change.segment[1]:
        parts.append(f"segment {change.segment[0] or 'none'} -> {change.segment[1] or 'none'}")
    if change.stage[0] != change.stage[1]:
        parts.append(f"stage {change.stage[0]} -> {change.stage[1]}")
    if change.key_account[0] != change.key_account[1]:
        parts.append("designated a key account" if change.key_account[1] else "no longer a key account")
    if change.risk[0] != change.risk[1]:
        parts.append(f"risk {change.risk[0]} -> {change.risk[1]}: {verdict.risk_reason}")
    after = f" after {cause_type}" if cause_type else ""
    return ("; ".join(parts) + after)[:500]


async def reassess(
    segment: CustomerSegment,
    *,
    session: AsyncSession,
    ctx: Context,
    now: datetime,
    cause: Envelope[Any] | None,
    cause_type: str | None = None,
    was_key_account: bool | None = None,
    history: list[dict[str, Any]] | None = None,
    move: MoveCause | None = None,
) -> Change | None:
    """Assess the customer again; record and announce what changed (one history row per cause).

    ``move`` says what moved them (see ``MoveCause``); by default: imported history if the cause
    event was imported, the customer's own doing if there is a cause event, else a recompute.

    ``segment`` may be any object with the row's attributes; with ``history``, the history row is
    appended there (for a bulk insert) instead of added to the session.
    """
    verdict = assess(facts_of(segment), ctx.policy, ctx.cut_points, ctx.moment(now))
    before = (segment.tier, segment.rfm_segment, segment.stage, segment.risk)
    previous_key_account = segment.key_account if was_key_account is None else was_key_account
    _store(segment, verdict, ctx, now)
    change = Change(
        tier=(before[0], segment.tier),
        segment=(before[1], segment.rfm_segment),
        stage=(before[2], segment.stage),
        key_account=(previous_key_account, segment.key_account),
        risk=(before[3], segment.risk),
    )
    dimensions = change.dimensions()
    if not dimensions:
        return None
    cause_type = cause_type or (cause.type if cause else None)
    imported = bool(cause and getattr(cause.data, "imported", False))
    if move is None:
        move = MoveCause.imported if imported else MoveCause.customer_event if cause else MoveCause.recompute
    record_change(
        segment,
        change,
        describe_change(change, verdict, cause_type),
        session=session,
        ctx=ctx,
        now=now,
        cause_id=cause.id if cause else None,
        cause_type=cause_type,
        probability_alive=verdict.probability_alive,
        expected_purchases=verdict.expected_purchases,
        imported=imported,
        history=history,
        move=move,
    )
    return change


def record_change(
    segment: CustomerSegment,
    change: Change,
    reason: str,
    *,
    session: AsyncSession,
    ctx: Context,
    now: datetime,
    cause_id: uuid.UUID | None,
    cause_type: str | None,
    probability_alive: float | None,
    expected_purchases: float | None = None,
    imported: bool = False,
    history: list[dict[str, Any]] | None = None,
    move: MoveCause = MoveCause.customer_event,
) -> None:
    """Write the history row and stage the events: tier_changed for the profile, risk_changed for risk."""
    dimensions = change.dimensions()
    row = dict(
        id=ordered_id(),
        customer_id=segment.customer_id,
        changed=",".join(dimensions),
        previous_tier=change.tier[0],
        tier=change.tier[1],
        previous_segment=change.segment[0],
        segment=change.segment[1],
        previous_stage=change.stage[0],
        stage=change.stage[1],
        previous_risk=change.risk[0],
        risk=change.risk[1],
        key_account=change.key_account[1],
        reason=reason,
        policy_version=ctx.policy_version,
        cut_points_version=ctx.cut_points.version,
        cause_event_id=cause_id,
        cause_event_type=cause_type,
        changed_at=now,
    )
    if history is not None:
        history.append(row)
    else:
        session.add(TierChange(**row))
    if set(dimensions) - {"risk"}:
        stage(
            TierChanged(
                customer_id=segment.customer_id,
                previous_tier=Tier(change.tier[0]),
                tier=Tier(change.tier[1]),
                key_account=change.key_account[1],
                previous_segment=change.segment[0],
                segment=change.segment[1],
                value_group=ValueGroup(segment.value_group) if segment.value_group else None,
                previous_stage=LoyaltyStage(change.stage[0]),
                stage=LoyaltyStage(change.stage[1]),
                reason=reason,
                policy_version=ctx.policy_version,
                cause_event_id=cause_id,
                imported=imported,
                cause=move,
                changed_at=now,
            ),
            session=session,
            source=SOURCE,
            cause=cause_id,
            time=now,
        )
    if "risk" in dimensions:
        stage(
            RiskChanged(
                customer_id=segment.customer_id,
                previous_risk=ChurnRisk(change.risk[0]),
                risk=ChurnRisk(change.risk[1]),
                tier=Tier(change.tier[1]),
                probability_alive=probability_alive,
                expected_purchases=_expected(expected_purchases),
                expected_purchases_days=ctx.policy.bgnbd.horizon_days
                if expected_purchases is not None
                else None,
                reason=reason,
                policy_version=ctx.policy_version,
                cause_event_id=cause_id,
                imported=imported,
                cause=move,
                changed_at=now,
            ),
            session=session,
            source=SOURCE,
            cause=cause_id,
            time=now,
        )


async def get(*, session: AsyncSession, customer_id: uuid.UUID) -> CustomerSegment:
    segment = await session.get(CustomerSegment, customer_id)
    if segment is None:
        raise SegmentNotFound(customer_id)
    return segment


async def history(
    *, session: AsyncSession, customer_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[TierChange], str | None]:
    """A customer's changes, oldest first."""
    return await keyset_page(
        sa.select(TierChange).where(TierChange.customer_id == customer_id),
        session=session,
        order=[TierChange.changed_at, TierChange.id],
        limit=limit,
        cursor=cursor,
    )


async def set_key_account(
    *,
    session: AsyncSession,
    ctx: Context,
    customer_id: uuid.UUID,
    key_account: bool,
    reason: str,
    actor: str,
    now: datetime,
) -> CustomerSegment:
    """Designate (or stop designating) a key account; who and why are kept, and the change announced.

    Only a customer segmentation knows of (from their events): a designation of an id that names
    nobody would otherwise make a segment, and an announcement, for no one.
    """
    segment = await get(session=session, customer_id=customer_id)
    previous = segment.key_account
    segment.key_account = key_account
    segment.key_account_by, segment.key_account_reason, segment.key_account_at = (
        actor[:200],
        reason[:500],
        now,
    )
    await reassess(
        segment,
        session=session,
        ctx=ctx,
        now=now,
        cause=None,
        cause_type=f"key account set by {actor}"[:100],
        was_key_account=previous,
        move=MoveCause.manual,
    )
    return segment


def _expected(value: float | None) -> float | None:
    """An expectation to announce: none where the model could not say (NaN), never below zero."""
    return None if value is None or value != value else max(0.0, value)
