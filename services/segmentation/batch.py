"""The batch: move the window, recompute cut points and the BG/NBD model, and re-assess everyone at once.

It runs on a schedule (due time in the database), on demand, and when a policy is applied. The
population is read column by column by DuckDB (``columnar``), before the batch writes anything,
and assessed with numpy; the batch's own changes of the figures (the window's move, the risk
points) are written set-based and applied to the arrays alike. Only customers whose assessment
changed are written, and only those whose tier, segment, stage, key-account flag or risk changed
are announced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation import btyd, columnar, ledger, rfm, scan
from services.segmentation.assessment import (
    ABC,
    DAY_SECONDS,
    RISK_OF_CAUSE,
    RISKS,
    SEGMENTS,
    STAGES,
    TIERS,
    CutPoints,
    Population,
    PopulationAssessment,
    RiskCause,
    assess_population,
    explain_risk,
    recency_days,
    rule_text,
)
from services.segmentation.columnar import NULL_CODE, Loaded
from services.segmentation.models import (
    BehaviourSignal,
    CustomerSegment,
    CutPointsVersion,
    Purchase,
    SegmentationState,
    TierChange,
)
from services.segmentation.policy import Policy
from services.segmentation.policy_store import load_policy
from services.segmentation.service import SOURCE, STATE_ID, Change
from shared.db import ordered_id
from shared.events.segmentation import (
    ChurnRisk,
    LoyaltyStage,
    MoveCause,
    RiskChanged,
    Tier,
    TierChanged,
    ValueGroup,
)
from shared.outbox import stage
from shared.versioning import latest_version

log = logging.getLogger("csm.segmentation.batch")


def vocabularies(policy: Policy) -> dict[str, list[str]]:
    """The values each label column can take under ``policy``: what its codes index."""
    return {
        "tier": [t.value for t in TIERS],
        "tier_rule": list(dict.fromkeys(_rule_texts(policy))),
        "rfm_segment": [s.value for s in SEGMENTS],
        "stage": [s.value for s in STAGES],
        "risk": [r.value for r in RISKS],
        "abc_class": [c.value for c in ABC],
        "value_group": [g.value for g in ValueGroup],
    }


def _rule_texts(policy: Policy) -> list[str]:
    """The rule text of each rule code + 1 (code -1 is the key account)."""
    return [rule_text(policy, i) for i in range(-1, len(policy.tier_rules) + 1)]


async def _load(session: AsyncSession, policy: Policy) -> Loaded:
    """Everyone as committed, read by DuckDB in a thread (the event loop goes on meanwhile)."""
    url = session.get_bind().engine.url
    return await asyncio.to_thread(columnar.read_population, url, vocabularies(policy))


def compute_cut_points(
    population: Population,
    policy: Policy,
    *,
    version: int,
    now: float,
    seed: int,
) -> tuple[CutPoints, dict[str, Any]]:
    """Cut points, ABC thresholds, the 80/20 figure and the BG/NBD fit of the current population.

    The RFM quintiles, the ABC classes and the 80/20 figure rank the buyers in the window (at
    least one purchase in it, free orders included); customers who bought only before it are
    dormant, counted apart, and ranked in none of them.
    """
    bought = population.frequency > 0
    buyers = int(np.count_nonzero(bought))
    if policy.cut_points_method == "fixed":
        assert policy.fixed_cut_points is not None
        thresholds: rfm.RfmThresholds | None = rfm.fixed_thresholds(policy.fixed_cut_points)
    elif buyers:
        thresholds = rfm.quintile_thresholds(
            recency_days(population, now)[bought],
            population.frequency[bought],
            population.monetary_minor[bought],
        )
    else:
        thresholds = None
    money = population.monetary_minor[bought]
    abc = rfm.abc_thresholds(money, a_share=policy.abc_a_share, b_share=policy.abc_b_share)
    shares = policy.revenue_shares()
    fit = fit_bgnbd(population, policy, now=now, seed=seed) if policy.bgnbd.enabled else None
    cut_points = CutPoints(
        version=version,
        rfm=thresholds,
        abc=abc,
        bgnbd=fit.parameters if fit else None,
        revenue_shares=tuple(zip(shares, rfm.revenue_share_minimums(money, shares), strict=True)),
    )
    extra = {
        "population": buyers,
        "dormant": int(np.count_nonzero((population.lifetime_frequency > 0) & ~bought)),
        "top_share_of_revenue": rfm.top_share_of_revenue(money, top_share=policy.pareto_top_share),
        "bgnbd": btyd.document(fit),
    }
    return cut_points, extra


def fit_bgnbd(
    population: Population,
    policy: Policy,
    *,
    now: float,
    seed: int,
) -> btyd.Fit | None:
    """Fit on a random sample of buyers, with times rounded to days (which also merges equal histories)."""
    bought = np.flatnonzero(population.lifetime_frequency > 0)
    if len(bought) < policy.bgnbd.min_customers:
        return None
    rng = np.random.default_rng(seed)
    if len(bought) > policy.bgnbd.sample_size:
        bought = rng.choice(bought, policy.bgnbd.sample_size, replace=False)
    unit = policy.bgnbd.time_unit_days
    first = population.first_purchase[bought]
    days = population.lifetime_frequency if population.purchase_days is None else population.purchase_days
    # Repeat purchase *days*: the models' transactions (several orders on one day are one).
    x = np.maximum(days[bought] - 1, 0).astype(float)
    t_x = np.round(np.maximum(0.0, population.last_purchase[bought] - first) / DAY_SECONDS) / unit
    age = np.maximum(t_x, np.round((now - first) / DAY_SECONDS) / unit)
    t_x = np.where(x > 0, t_x, 0.0)
    if not np.any(x > 0):
        return None
    try:
        # Always from the same starting point: yesterday's estimates would make today's fit depend
        # on the path taken (and wander where the likelihood is flat), not only on the purchases.
        return btyd.fit(policy.bgnbd.model, x, t_x, age)
    except (ValueError, FloatingPointError) as error:
        log.warning("%s fit failed: %s", policy.bgnbd.model.value, error)
        return None


@dataclass
class Outcome:
    """What a batch (or a what-if) found: counts of moves and the tier migration matrix."""

    population: int
    customers: int
    rewritten: int = 0
    announced: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    matrix: dict[str, dict[str, int]] = field(default_factory=dict)
    cut_points_version: int = 0
    policy_version: int = 0
    seconds: float = 0.0
    # The moment everything was figured as of, the window's start, and whether that moment is pinned.
    as_of: datetime | None = None
    window_start: datetime | None = None
    pinned: bool = False
    dormant: int = 0


def tier_matrix(before: np.ndarray, after: np.ndarray) -> dict[str, dict[str, int]]:
    matrix = {old.value: {new.value: 0 for new in TIERS} for old in TIERS}
    if len(before):
        codes = np.array([TIERS.index(Tier(t)) for t in before]) if before.dtype == object else before
        counts = np.zeros((len(TIERS), len(TIERS)), dtype=np.int64)
        np.add.at(counts, (codes, after), 1)
        for i, old in enumerate(TIERS):
            for j, new in enumerate(TIERS):
                matrix[old.value][new.value] = int(counts[i, j])
    return matrix


def _verdict_codes(
    result: PopulationAssessment, population: Population, policy: Policy
) -> dict[str, np.ndarray]:
    """The verdicts as codes into ``vocabularies(policy)`` (NULL_CODE: none); scores as numbers, -1 none."""
    words = vocabularies(policy)
    bought = population.lifetime_frequency > 0
    rule_code = np.array([words["tier_rule"].index(text) for text in _rule_texts(policy)], dtype=np.int64)
    risk_code = np.array(
        [words["risk"].index(RISK_OF_CAUSE[RiskCause(c)].value) for c in range(len(RiskCause))],
        dtype=np.int64,
    )
    groups = {c.value: g.value for c, g in policy.value_groups.items()}
    # By ABC code + 1 (code -1: no class).
    group_of_class = np.array(
        [NULL_CODE]
        + [words["value_group"].index(groups[c.value]) if c.value in groups else NULL_CODE for c in ABC],
        dtype=np.int64,
    )
    value_group = np.where(
        bought, group_of_class[result.abc + 1], words["value_group"].index(ValueGroup.potential.value)
    )

    def score(values: np.ndarray) -> np.ndarray:
        return np.where(values < 0, -1, values).astype(np.int64)

    return {
        "tier": result.tier.astype(np.int64),
        "tier_rule": rule_code[result.rule + 1],
        "rfm_segment": np.where(result.segment < 0, NULL_CODE, result.segment).astype(np.int64),
        "stage": result.stage.astype(np.int64),
        "risk": risk_code[result.risk_cause],
        "recency_score": score(result.recency_score),
        "frequency_score": score(result.frequency_score),
        "monetary_score": score(result.monetary_score),
        "abc_class": np.where(result.abc < 0, NULL_CODE, result.abc).astype(np.int64),
        "value_group": value_group.astype(np.int64),
    }


def _decode(codes: dict[str, np.ndarray], policy: Policy) -> dict[str, np.ndarray]:
    """Verdict codes as the values stored (text, or None; scores as ints or None)."""
    words = vocabularies(policy)
    decoded: dict[str, np.ndarray] = {}
    for name, values in codes.items():
        if name in scan.SCORES:
            table = np.array([*range(6), None], dtype=object)  # scores are 1-5
        else:
            table = np.array([*words[name], None], dtype=object)
        decoded[name] = table[np.where(values < 0, len(table) - 1, values)]
    return decoded


def _verdict_columns(
    result: PopulationAssessment, population: Population, policy: Policy
) -> dict[str, np.ndarray]:
    return _decode(_verdict_codes(result, population, policy), policy)


async def move_window(
    *, session: AsyncSession, old_start: datetime | None, new_start: datetime, loaded: Loaded
) -> int:
    """Take purchases that left the window out of the figures (or put back those a longer window takes
    in), in the database and in the population read before."""
    if old_start is not None and old_start == new_start:
        return 0
    moved, sign = await _crossing_the_window_edge(session=session, old_start=old_start, new_start=new_start)
    if moved:
        table = CustomerSegment.__table__
        await session.execute(
            table.update()
            .where(table.c.customer_id == sa.bindparam("cid"))
            .values(
                frequency=sa.func.max(table.c.frequency + sign * sa.bindparam("df"), 0)
                if session.bind.dialect.name == "sqlite"  # type: ignore[union-attr]
                else sa.func.greatest(table.c.frequency + sign * sa.bindparam("df"), 0),
                monetary_minor=sa.func.max(table.c.monetary_minor + sign * sa.bindparam("dm"), 0)
                if session.bind.dialect.name == "sqlite"  # type: ignore[union-attr]
                else sa.func.greatest(table.c.monetary_minor + sign * sa.bindparam("dm"), 0),
            ),
            [{"cid": cid, "df": int(df or 0), "dm": int(dm or 0)} for cid, df, dm in moved],
        )
        _shift(loaded, moved, sign)
    return len(moved)


def _shift(loaded: Loaded, moved: Sequence[Any], sign: int) -> None:
    """The window's move in memory: the same arithmetic as the UPDATE (never below zero)."""
    rows = loaded.index_of([cid for cid, _, _ in moved])
    known = rows >= 0
    df = np.array([int(df or 0) for _, df, _ in moved], dtype=np.int64)[known]
    dm = np.array([int(dm or 0) for _, _, dm in moved], dtype=np.int64)[known]
    population, rows = loaded.population, rows[known]
    population.frequency[rows] = np.maximum(population.frequency[rows] + sign * df, 0)
    population.monetary_minor[rows] = np.maximum(population.monetary_minor[rows] + sign * dm, 0)


async def _crossing_the_window_edge(
    *, session: AsyncSession, old_start: datetime | None, new_start: datetime
) -> tuple[Sequence[Any], int]:
    """Per customer, the purchases between the old and the new start: (customer, count, amount) rows,
    and -1 when they leave the window (it moved forward) or 1 when a longer window takes them in."""
    if old_start is None or new_start > old_start:
        low, high, sign = old_start, new_start, -1
    else:
        low, high, sign = new_start, old_start, 1
    query = (
        sa.select(
            Purchase.customer_id,
            sa.func.sum(sa.case((Purchase.fully_refunded.is_(False), 1), else_=0)),
            sa.func.sum(Purchase.amount_minor),
        )
        .where(Purchase.purchased_at < high)
        .group_by(Purchase.customer_id)
    )
    if low is not None:
        query = query.where(Purchase.purchased_at >= low)
    return (await session.execute(query)).all(), sign


async def refresh_signal_points(
    *, session: AsyncSession, since: datetime, until: datetime | None = None, loaded: Loaded
) -> None:
    """Risk points count only recent behaviour: recount them for customers who have any or had some,
    in the database and in the population read before."""
    counted = [
        BehaviourSignal.customer_id == CustomerSegment.customer_id,
        BehaviourSignal.occurred_at >= since,
    ]
    if until is not None:
        counted.append(BehaviourSignal.occurred_at <= until)
    recent = (
        sa.select(sa.func.coalesce(sa.func.sum(BehaviourSignal.points), 0.0))
        .where(*counted)
        .scalar_subquery()
    )
    await session.execute(
        sa.update(CustomerSegment)
        .where(
            sa.or_(
                CustomerSegment.signal_points != 0,
                CustomerSegment.customer_id.in_(
                    sa.select(BehaviourSignal.customer_id).where(BehaviourSignal.occurred_at >= since)
                ),
            )
        )
        .values(signal_points=recent)
        .execution_options(synchronize_session=False)
    )
    # Everyone the UPDATE did not touch had none and has none; read back those who have some.
    kept = await session.execute(
        sa.select(CustomerSegment.customer_id, CustomerSegment.signal_points).where(
            CustomerSegment.signal_points != 0
        )
    )
    having = kept.all()
    points = loaded.population.signal_points
    points[:] = 0.0
    rows = loaded.index_of([cid for cid, _ in having])
    values = np.array([float(p) for _, p in having], dtype=np.float64)
    points[rows[rows >= 0]] = values[rows >= 0]


async def recompute(
    *,
    session: AsyncSession,
    now: datetime,
    trigger: str,
    policy_version: int | None = None,
    actor: str = "system",
    cause: MoveCause = MoveCause.recompute,
    as_of: datetime | None = None,
    live: bool = False,
) -> Outcome:
    """The batch, in the caller's transaction. With ``policy_version``, that policy is put in force first.

    With ``as_of``, that analysis date is pinned: this batch and every later one (the schedule's
    too) figure everything as of it, until a batch with ``live`` clears it. Without either, the
    batch keeps whatever is pinned, else runs as of ``now``.
    """
    started = time.perf_counter()
    state = await session.get(SegmentationState, STATE_ID, with_for_update=True)
    assert state is not None, "segmentation_state is missing: run the migrations"
    if policy_version is not None:
        state.policy_version = policy_version
    policy = await load_policy(state.policy_version, session=session)
    was_pinned = state.as_of is not None
    if as_of is not None:
        state.as_of = as_of
    elif live:
        state.as_of = None
    analysed_at = state.as_of or now
    if cause is MoveCause.recompute and (state.as_of is not None or was_pinned):
        # Re-labelled as of another moment than now: nothing happened to anyone.
        cause = MoveCause.analysis_date
    new_start = analysed_at - timedelta(days=policy.window_days)
    # Read before anything of the population is written: the read sees only what is committed.
    await session.flush()
    loaded = await _load(session, policy)
    if state.as_of is not None or was_pinned:
        await ledger.rebuild_figures(session=session, window_start=new_start, until=state.as_of)
        rows = await ledger.figures(session=session, window_start=new_start, until=state.as_of)
        ledger.put_figures(loaded, rows)
    else:
        await move_window(session=session, old_start=state.window_start, new_start=new_start, loaded=loaded)
    await refresh_signal_points(
        session=session,
        since=analysed_at - timedelta(days=policy.signals.window_days),
        until=state.as_of,
        loaded=loaded,
    )
    await session.flush()
    # The state row's lock serialises batches, so the next number is free.
    version = await latest_version(session=session, version=CutPointsVersion.version) + 1
    moment = analysed_at.timestamp()
    cut_points, extra = compute_cut_points(
        loaded.population,
        policy,
        version=version,
        now=moment,
        seed=policy.bgnbd.seed,
    )
    thresholds = cut_points.rfm
    session.add(
        CutPointsVersion(
            version=version,
            policy_version=state.policy_version,
            method=policy.cut_points_method,
            trigger=trigger[:40],
            population=extra["population"],
            recency_days=list(thresholds.recency_days) if thresholds else [None] * 4,
            frequency=list(thresholds.frequency) if thresholds else [None] * 4,
            monetary_minor=list(thresholds.monetary_minor) if thresholds else [None] * 4,
            abc_a_min_minor=cut_points.abc.a_min_minor,
            abc_b_min_minor=cut_points.abc.b_min_minor,
            top_share_of_revenue=extra["top_share_of_revenue"],
            bgnbd=extra["bgnbd"],
            window_start=new_start,
            as_of=analysed_at,
            dormant=extra["dormant"],
            revenue_shares=[[share, least] for share, least in cut_points.revenue_shares],
            computed_at=now,
        )
    )
    if extra["population"] == 0:
        cut_points = replace(cut_points, rfm=None)
    state.cut_points_version = version
    state.window_start = new_start
    state.next_recompute_at = now + timedelta(hours=policy.recompute_every_hours)
    state.updated_at = now
    await session.flush()

    result = assess_population(loaded.population, policy, cut_points, moment)
    outcome = Outcome(
        population=extra["population"],
        customers=len(loaded),
        cut_points_version=version,
        policy_version=state.policy_version,
        as_of=analysed_at,
        window_start=new_start,
        pinned=state.as_of is not None,
        dormant=extra["dormant"],
    )
    outcome.matrix = tier_matrix(loaded.stored["tier"], result.tier)
    await _write_changes(
        loaded, result, policy, state.policy_version, version, now, trigger, outcome, cause, session=session
    )
    outcome.seconds = time.perf_counter() - started
    log.info(
        "segmentation batch (%s): %d customers, %d rewritten, %d announced, %.1fs",
        trigger,
        outcome.customers,
        outcome.rewritten,
        outcome.announced,
        outcome.seconds,
    )
    return outcome


async def _write_changes(
    loaded: Loaded,
    result: PopulationAssessment,
    policy: Policy,
    policy_version: int,
    cut_points_version: int,
    now: datetime,
    trigger: str,
    outcome: Outcome,
    cause: MoveCause,
    *,
    session: AsyncSession,
) -> None:
    codes = _verdict_codes(result, loaded.population, policy)
    differs = np.zeros(len(loaded), dtype=bool)
    announced_dims = {}
    for name, values in codes.items():
        unequal = loaded.stored[name] != values
        differs |= unequal
        if name in ("tier", "rfm_segment", "stage", "risk"):
            announced_dims[name] = unequal
            outcome.changed[name] = int(np.count_nonzero(unequal))
    rewrite = np.flatnonzero(differs)
    outcome.rewritten = len(rewrite)
    if not len(rewrite):
        return
    # Only the rewritten customers' verdicts are turned into the values stored.
    new = _decode({name: values[rewrite] for name, values in codes.items()}, policy)
    ids = loaded.customer_ids(rewrite)
    await session.execute(
        sa.update(CustomerSegment),
        [
            {
                "customer_id": cid,
                **{name: new[name][k] for name in new},
                "risk_reason": explain_risk(RiskCause(int(result.risk_cause[i])), policy),
                "policy_version": policy_version,
                "cut_points_version": cut_points_version,
                "updated_at": now,
            }
            for k, (cid, i) in enumerate(zip(ids, rewrite, strict=True))
        ],
    )
    announce = np.zeros(len(loaded), dtype=bool)
    for unequal in announced_dims.values():
        announce |= unequal
    history: list[dict[str, Any]] = []
    # Positions in ``rewrite`` (every announced customer is rewritten), and what was stored before.
    announced = np.flatnonzero(announce[rewrite])
    was = {
        name: loaded.label_texts(name, rewrite[announced])
        for name in ("tier", "rfm_segment", "stage", "risk")
    }
    for n, k in enumerate(announced):
        i = rewrite[k]
        key_account = bool(loaded.population.key_account[i])
        change = Change(
            tier=(str(was["tier"][n]), new["tier"][k]),
            segment=(was["rfm_segment"][n], new["rfm_segment"][k]),
            stage=(str(was["stage"][n]), new["stage"][k]),
            key_account=(key_account, key_account),
            risk=(str(was["risk"][n]), new["risk"][k]),
        )
        risk_cause = RiskCause(int(result.risk_cause[i]))
        reason = _batch_reason(change, new["tier_rule"][k], explain_risk(risk_cause, policy), trigger)
        customer_id = ids[k]
        dims = change.dimensions()
        history.append(
            {
                "id": ordered_id(),
                "customer_id": customer_id,
                "changed": ",".join(dims),
                "previous_tier": change.tier[0],
                "tier": change.tier[1],
                "previous_segment": change.segment[0],
                "segment": change.segment[1],
                "previous_stage": change.stage[0],
                "stage": change.stage[1],
                "previous_risk": change.risk[0],
                "risk": change.risk[1],
                "key_account": key_account,
                "reason": reason,
                "policy_version": policy_version,
                "cut_points_version": cut_points_version,
                "cause_event_id": None,
                "cause_event_type": trigger[:100],
                "changed_at": now,
            }
        )
        p_alive, expected = result.probability_alive[i], result.expected_purchases[i]
        if set(dims) - {"risk"}:
            stage(
                TierChanged(
                    customer_id=customer_id,
                    previous_tier=Tier(change.tier[0]),
                    tier=Tier(change.tier[1]),
                    key_account=key_account,
                    previous_segment=change.segment[0],
                    segment=change.segment[1],
                    value_group=ValueGroup(new["value_group"][k]) if new["value_group"][k] else None,
                    previous_stage=LoyaltyStage(change.stage[0]),
                    stage=LoyaltyStage(change.stage[1]),
                    reason=reason,
                    policy_version=policy_version,
                    cause=cause,
                    changed_at=now,
                ),
                session=session,
                source=SOURCE,
                time=now,
            )
        if "risk" in dims:
            stage(
                RiskChanged(
                    customer_id=customer_id,
                    previous_risk=ChurnRisk(change.risk[0]),
                    risk=ChurnRisk(change.risk[1]),
                    tier=Tier(change.tier[1]),
                    probability_alive=None if np.isnan(p_alive) else float(p_alive),
                    expected_purchases=None if np.isnan(expected) else max(0.0, float(expected)),
                    expected_purchases_days=None if np.isnan(expected) else policy.bgnbd.horizon_days,
                    reason=reason,
                    policy_version=policy_version,
                    cause=cause,
                    changed_at=now,
                ),
                session=session,
                source=SOURCE,
                time=now,
            )
    outcome.announced = len(history)
    if history:
        await session.execute(sa.insert(TierChange), history)


def _batch_reason(change: Change, rule: str, risk_reason: str, trigger: str) -> str:
    parts = []
    if change.tier[0] != change.tier[1]:
        parts.append(f"moved to {rule}")
    if change.segment[0] != change.segment[1]:
        parts.append(f"segment {change.segment[0] or 'none'} -> {change.segment[1] or 'none'}")
    if change.stage[0] != change.stage[1]:
        parts.append(f"stage {change.stage[0]} -> {change.stage[1]}")
    if change.risk[0] != change.risk[1]:
        parts.append(f"risk {change.risk[0]} -> {change.risk[1]}: {risk_reason}")
    return ("; ".join(parts) + f" ({trigger})")[:500]


@dataclass
class Picture:
    """Everyone assessed under a policy as of a moment; nothing written."""

    loaded: Loaded
    result: PopulationAssessment
    columns: dict[str, np.ndarray]
    extra: dict[str, Any]
    as_of: datetime
    window_start: datetime


async def picture(
    *, session: AsyncSession, policy: Policy, now: datetime, as_of: datetime | None = None
) -> Picture:
    """The population as ``policy`` sees it as of ``as_of`` (else the pinned analysis date, else now)."""
    state = await session.get(SegmentationState, STATE_ID)
    assert state is not None
    loaded = await _load(session, policy)
    analysed_at = as_of or state.as_of or now
    new_start = analysed_at - timedelta(days=policy.window_days)
    if as_of is not None or state.as_of is not None:
        rows = await ledger.figures(session=session, window_start=new_start, until=analysed_at)
        ledger.put_figures(loaded, rows)
    elif state.window_start is None or state.window_start != new_start:
        moved, sign = await _crossing_the_window_edge(
            session=session, old_start=state.window_start, new_start=new_start
        )
        _shift(loaded, moved, sign)
    moment = analysed_at.timestamp()
    cut_points, extra = compute_cut_points(
        loaded.population, policy, version=0, now=moment, seed=policy.bgnbd.seed
    )
    if extra["population"] == 0:
        cut_points = replace(cut_points, rfm=None)
    result = assess_population(loaded.population, policy, cut_points, moment)
    columns = _verdict_columns(result, loaded.population, policy)
    return Picture(loaded, result, columns, extra, analysed_at, new_start)


async def what_if(
    *, session: AsyncSession, candidate: Policy, now: datetime, as_of: datetime | None = None
) -> Outcome:
    """The candidate policy on the current population (as of ``as_of``): moves and the tier matrix."""
    state = await session.get(SegmentationState, STATE_ID)
    assert state is not None
    found = await picture(session=session, policy=candidate, now=now, as_of=as_of)
    loaded = found.loaded
    new = _verdict_codes(found.result, loaded.population, candidate)
    outcome = Outcome(
        population=found.extra["population"],
        customers=len(loaded),
        policy_version=state.policy_version,
        as_of=found.as_of,
        window_start=found.window_start,
        pinned=as_of is None and state.as_of is not None,
        dormant=found.extra["dormant"],
    )
    outcome.matrix = tier_matrix(loaded.stored["tier"], found.result.tier)
    for name in ("tier", "rfm_segment", "stage", "risk"):
        outcome.changed[name] = int(np.count_nonzero(loaded.stored[name] != new[name]))
    return outcome


async def due(now: datetime, *, session: AsyncSession) -> bool:
    state = await session.get(SegmentationState, STATE_ID)
    return state is not None and (state.next_recompute_at is None or state.next_recompute_at <= now)
