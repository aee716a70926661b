"""The batch reads the population with DuckDB: the same customers, facts and labels as a row-by-row read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.segmentation import batch, columnar, scan, service
from services.segmentation.models import BehaviourSignal, CustomerSegment, Purchase, SegmentationState
from services.segmentation.policy import DEFAULT_POLICY
from shared.db import Database
from tests.harness import Databases

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# What the batch read before, one row at a time through the driver: the reference.
REFERENCE = (
    "customer_id",
    "frequency",
    "monetary_minor",
    "lifetime_frequency",
    "first_purchase_at",
    "last_purchase_at",
    "engaged",
    "last_nps",
    "signal_points",
    "key_account",
    "tier",
    "tier_rule",
    "rfm_segment",
    "stage",
    "risk",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "abc_class",
    "value_group",
    "purchase_days",
)


def _row_read(connection: Connection) -> dict[str, list[Any]]:
    rows = connection.execute(sa.select(*(CustomerSegment.__table__.c[name] for name in REFERENCE))).all()
    ordered = sorted(rows, key=lambda row: row[0])
    return {name: [row[k] for row in ordered] for k, name in enumerate(REFERENCE)}


def _segment(customer_id: uuid.UUID, **fields: Any) -> CustomerSegment:
    defaults: dict[str, Any] = {
        "frequency": 0,
        "monetary_minor": 0,
        "lifetime_frequency": 0,
        "lifetime_monetary_minor": 0,
        "purchase_days": 0,
        "engaged": False,
        "signal_points": 0.0,
        "key_account": False,
        "tier": "lead",
        "initial_tier": "lead",
        "tier_rule": "lead: none",
        "stage": "suspicion",
        "risk": "low",
        "risk_reason": "",
        "policy_version": 0,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return CustomerSegment(customer_id=customer_id, **(defaults | fields))


def _edge_cases() -> list[CustomerSegment]:
    midnight = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        # Registered, never bought: every nullable column NULL.
        _segment(uuid.UUID(int=1)),
        # A buyer whose purchases sit on both sides of a UTC midnight, to the microsecond.
        _segment(
            uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff"),
            frequency=3,
            monetary_minor=12_345_678_901,
            lifetime_frequency=3,
            lifetime_monetary_minor=12_345_678_901,
            purchase_days=2,
            first_purchase_at=midnight - timedelta(microseconds=1),
            last_purchase_at=midnight,
            engaged=True,
            last_nps=10,
            signal_points=2.5,
            key_account=True,
            tier="platinum",
            tier_rule="platinum: designated key account",
            rfm_segment="champions",
            recency_score=5,
            frequency_score=5,
            monetary_score=5,
            abc_class="A",
            value_group="high_value",
            stage="advocate",
            risk="low",
        ),
        # Dormant: bought, but only before the window; a score of 0 stays 0, not NULL.
        _segment(
            uuid.UUID("80000000-0000-4000-8000-000000000000"),
            lifetime_frequency=1,
            lifetime_monetary_minor=500,
            purchase_days=1,
            first_purchase_at=datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
            last_purchase_at=datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
            last_nps=0,
            tier="iron",
            tier_rule="an older policy's rule",
            rfm_segment="hibernating",
            recency_score=1,
            frequency_score=0,
            monetary_score=1,
            stage="first_time_buyer",
            risk="lost",
        ),
        # Before the epoch and long after it.
        _segment(
            uuid.UUID("00000000-0000-4000-8000-00000000000a"),
            lifetime_frequency=2,
            purchase_days=2,
            first_purchase_at=datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
            last_purchase_at=datetime(2100, 1, 1, tzinfo=UTC),
        ),
    ]


async def _population(databases: Databases) -> tuple[Database, list[uuid.UUID]]:
    db = Database(await databases.create("segmentation"))
    segments = _edge_cases()
    erased = _segment(uuid.UUID("7fffffff-ffff-4fff-bfff-ffffffffffff"), frequency=1)
    async with db.unit_of_work() as session:
        session.add_all([*segments, erased])
    async with db.unit_of_work() as session:  # what segmentation's erasure handler does to the row
        await session.execute(
            sa.delete(CustomerSegment).where(CustomerSegment.customer_id == erased.customer_id)
        )
    return db, sorted(s.customer_id for s in segments)


async def test_the_columnar_read_gives_the_population_the_row_read_gave(databases: Databases) -> None:
    db, kept = await _population(databases)
    try:
        async with db.engine.connect() as connection:
            reference = await connection.run_sync(_row_read)
        words = batch.vocabularies(DEFAULT_POLICY)
        loaded = columnar.read_population(db.engine.url, words)
    finally:
        await db.dispose()

    # Everyone but the erased customer, in key order (the fit's seeded sample depends on it).
    assert loaded.customer_ids(np.arange(len(loaded))) == kept == reference["customer_id"]
    population = loaded.population
    for name in ("frequency", "monetary_minor", "lifetime_frequency", "purchase_days"):
        assert getattr(population, name).tolist() == reference[name], name
    assert population.engaged.tolist() == reference["engaged"]
    assert population.key_account.tolist() == reference["key_account"]
    assert population.signal_points.tolist() == reference["signal_points"]
    assert population.last_nps.tolist() == pytest.approx(
        [np.nan if v is None else v for v in reference["last_nps"]], nan_ok=True
    )
    for array, name in (
        (population.first_purchase, "first_purchase_at"),
        (population.last_purchase, "last_purchase_at"),
    ):
        # To the microsecond, on both databases (SQLite's julianday() kept milliseconds).
        expected = [np.nan if v is None else v.timestamp() for v in reference[name]]
        assert array.tolist() == pytest.approx(expected, abs=5e-7, nan_ok=True), name
    for name, vocabulary in words.items():
        stored = reference[name]
        assert loaded.label_texts(name, np.arange(len(loaded))) == stored, name
        expected_codes = [
            columnar.NULL_CODE
            if v is None
            else vocabulary.index(v)
            if v in vocabulary
            else columnar.UNKNOWN_CODE
            for v in stored
        ]
        assert loaded.stored[name].tolist() == expected_codes, name
    for name in scan.SCORES:
        assert loaded.stored[name].tolist() == [-1 if v is None else v for v in reference[name]], name
    assert loaded.stored["tier_rule"].tolist()[2] == columnar.UNKNOWN_CODE  # the older policy's rule
    assert loaded.index_of([kept[2], uuid.UUID("7fffffff-ffff-4fff-bfff-ffffffffffff")]).tolist() == [2, -1]


async def test_what_the_batch_changes_before_it_assesses_is_what_it_writes(databases: Databases) -> None:
    """The read comes before the batch's own writes (window move, risk points), which it applies in
    memory alike: a second batch at the same moment finds nothing to change."""
    db = Database(await databases.create("segmentation"))
    try:
        customers = [uuid.UUID(int=(i + 1) << 64 | 0x4000_8000_0000_0000) for i in range(40)]
        async with db.unit_of_work() as session:
            for i, customer in enumerate(customers):
                at = [NOW - timedelta(days=d) for d in (3 + i, 300 + 3 * i, 400 + i)]
                session.add_all(
                    Purchase(
                        purchase_id=uuid.uuid4(),
                        customer_id=customer,
                        amount_minor=1_000 * (i + 1) * (k + 1),
                        purchased_at=moment,
                        fully_refunded=False,
                    )
                    for k, moment in enumerate(at)
                )
                session.add(
                    _segment(
                        customer,
                        frequency=3,
                        monetary_minor=6_000 * (i + 1),
                        lifetime_frequency=3,
                        lifetime_monetary_minor=6_000 * (i + 1),
                        purchase_days=3,
                        first_purchase_at=min(at),
                        last_purchase_at=max(at),
                        signal_points=1.0,
                    )
                )
                if i % 3 == 0:
                    session.add(
                        BehaviourSignal(
                            customer_id=customer, kind="late_payment", points=7.5, occurred_at=NOW
                        )
                    )
            state = await session.get(SegmentationState, service.STATE_ID)
            assert state is not None
            # Figures counted from a window that started long ago: the batch moves it.
            state.window_start = NOW - timedelta(days=800)
        async with db.unit_of_work() as session:
            first = await batch.recompute(session=session, now=NOW, trigger="test")
        async with db.unit_of_work() as session:
            second = await batch.recompute(session=session, now=NOW, trigger="test again")
        async with db.read() as session:
            kept = dict(
                (
                    await session.execute(sa.select(CustomerSegment.customer_id, CustomerSegment.frequency))
                ).all()
            )
            risks = dict(
                (await session.execute(sa.select(CustomerSegment.customer_id, CustomerSegment.risk))).all()
            )
            points = dict(
                (
                    await session.execute(
                        sa.select(CustomerSegment.customer_id, CustomerSegment.signal_points)
                    )
                ).all()
            )
    finally:
        await db.dispose()
    assert first.rewritten > 0 and first.announced > 0
    assert (second.rewritten, second.announced) == (0, 0)
    # The window moved in the database: purchases older than a year left the figures.
    assert kept[customers[0]] == 2 and kept[customers[-1]] == 1
    # The recent risk points were counted in the database and in the assessment alike.
    assert points[customers[0]] == 7.5 and points[customers[1]] == 0.0
    assert [risks[c] for c in customers[:3]] == ["at_risk", "low", "low"]
