"""A company moves in: it imports a history that ended two years ago and analyses it as of its last day.

The history is generated (long-tailed spend, one-time buyers, free orders, customers who never
bought, dates in a declared non-ISO layout and zone), imported through the real ``csm import``
into the real running system (``csm up``: broker, four services), and analysed through
``csm segmentation recompute --as-of``. The figures are held to an independent computation
with Polars over the same CSV files; nobody is messaged; the pyramid is a pyramid.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from services.registry import SERVICES
from services.segmentation.policy import DEFAULT_POLICY
from shared.db import create_engine
from tests.e2e.system import System, count
from tests.harness import Databases

pytestmark = pytest.mark.e2e

CUSTOMERS = 2000
LAYOUT = "%d/%m/%Y %H:%M"  # as the old system wrote it, in Shanghai time
ZONE = "Asia/Shanghai"
WINDOW = timedelta(days=DEFAULT_POLICY.window_days)
DAY_MICROSECONDS = 86_400 * 1_000_000


def write_history(directory: Path, end: date, seed: int = 12) -> tuple[Path, Path]:
    """customers.csv and purchases.csv of a history whose last purchase is on ``end``."""
    rng = np.random.default_rng(seed)
    customers = directory / "customers.csv"
    purchases = directory / "purchases.csv"
    with (
        customers.open("w", newline="", encoding="utf-8") as c,
        purchases.open("w", newline="", encoding="utf-8") as p,
    ):
        people = csv.writer(c)
        people.writerow(["external_id", "name", "email"])
        orders = csv.writer(p)
        orders.writerow(["order_id", "customer_external_id", "amount", "currency", "purchased_at"])
        for i in range(CUSTOMERS):
            people.writerow([f"C{i}", f"Customer {i}", f"c{i}@example.com"])
            if i % 40 == 39:
                continue  # registered, never bought
            value = math.exp(rng.normal(math.log(60), 1.3))  # long-tailed spend per order
            purchases_made = 1 if rng.random() < 0.45 else 1 + int(rng.geometric(0.4))
            since = int(rng.integers(0, 3 * 365))  # days before the end of the first purchase
            days = sorted((int(d) for d in rng.integers(0, since + 1, purchases_made)), reverse=True)
            if i == 0:
                days[-1] = 0  # the history's last day
            for n, d in enumerate(days):
                moment = datetime.combine(end - timedelta(days=d), time(int(rng.integers(8, 22)), 7 * n % 60))
                free = rng.random() < 0.03  # a free sample or a fully discounted order
                amount = 0.0 if free else max(0.01, value * math.exp(rng.normal(0, 0.4)))
                orders.writerow([f"O{i}-{n}", f"C{i}", f"{amount:.2f}", "CNY", moment.strftime(LAYOUT)])
    return customers, purchases


def expected_figures(customers: Path, purchases: Path, as_of: datetime) -> dict[str, Any]:
    """Pareto share, ABC, RFM segments and tiers as the README defines them, computed with Polars."""
    start = as_of - WINDOW
    bought = (
        pl.read_csv(purchases, schema_overrides={"amount": pl.String})
        .with_columns(
            at=pl.col("purchased_at")
            .str.strptime(pl.Datetime("us"), LAYOUT)
            .dt.replace_time_zone(ZONE)
            .dt.convert_time_zone("UTC"),
            minor=pl.col("amount").str.replace(".", "", literal=True).cast(pl.Int64),
        )
        .with_columns(in_window=(pl.col("at") >= start) & (pl.col("at") <= as_of))
        .group_by("customer_external_id")
        .agg(
            frequency=pl.col("in_window").sum().cast(pl.Int64),
            monetary=pl.when(pl.col("in_window")).then(pl.col("minor")).otherwise(0).sum(),
            lifetime=pl.len().cast(pl.Int64),
            first=pl.col("at").min(),
            last=pl.col("at").max(),
        )
    )
    people = pl.read_csv(customers).select(pl.col("external_id").alias("customer_external_id"))
    everyone = people.join(bought, on="customer_external_id", how="left").with_columns(
        pl.col("frequency", "monetary", "lifetime").fill_null(0)
    )
    buyers = everyone.filter(pl.col("frequency") > 0)
    n = buyers.height
    total = int(buyers["monetary"].sum())

    # The 80/20 figure: the revenue share of the top 20% of buyers in the window.
    spend = buyers["monetary"].sort(descending=True)
    top_share = int(spend.head(math.ceil(0.2 * n)).sum()) / total

    # Cumulative revenue shares, biggest spender first; whoever crosses a boundary is inside it.
    ranked = buyers.sort("monetary", descending=True).with_columns(
        before=pl.col("monetary").cum_sum() - pl.col("monetary")
    )

    def least_within(parts: int, of: int) -> int:
        inside = ranked.filter(pl.col("before") * of < parts * total)["monetary"].to_numpy()
        return int(inside.min())

    a_min, b_min, platinum_min = least_within(4, 5), least_within(19, 20), least_within(2, 5)

    # Risk: lost after a year's silence, or four times the customer's own rhythm.
    since = (pl.lit(as_of) - pl.col("last")).dt.total_microseconds() / DAY_MICROSECONDS
    span = (pl.col("last") - pl.col("first")).dt.total_microseconds() / DAY_MICROSECONDS
    rhythm = (
        pl.when(pl.col("lifetime") >= 2)
        .then(span / (pl.col("lifetime") - 1))
        .otherwise(90.0)
        .clip(lower_bound=7.0)
    )
    everyone = everyone.with_columns(
        lost=(pl.col("lifetime") > 0) & ((since >= 365) | (since / rhythm >= 4)),
        recency=(pl.lit(as_of) - pl.col("last")).dt.total_microseconds() // DAY_MICROSECONDS,
    )

    # Mid-rank quintile scores among the buyers in the window: 1 + floor(5 x percentile), where the
    # percentile is the share below plus half the share equal, in exact integers.
    def score(column: str, values: pl.Expr) -> pl.Expr:
        population = np.sort(buyers.select(values).to_series().to_numpy())

        def midrank(value: pl.Series) -> pl.Series:
            below = np.searchsorted(population, value.to_numpy(), "left")
            equal = np.searchsorted(population, value.to_numpy(), "right") - below
            return pl.Series(1 + 5 * (2 * below + equal) // (2 * n))

        return values.map_batches(midrank).alias(column)

    buyers = buyers.join(
        everyone.select("customer_external_id", "recency", "lost"), on="customer_external_id"
    )
    everyone = everyone.with_columns(
        score("r", -pl.col("recency")), score("f", pl.col("frequency")), score("m", pl.col("monetary"))
    )
    segment_of: dict[str, str] = {}  # the policy's segment map: the first rule covering a pair names it
    for rule in DEFAULT_POLICY.segment_rules:
        for r in range(rule.recency[0], rule.recency[1] + 1):
            for fm in range(rule.frequency_monetary[0], rule.frequency_monetary[1] + 1):
                segment_of.setdefault(f"{r},{fm}", rule.segment.value)
    everyone = everyone.with_columns(
        r=pl.when(pl.col("lost") | (pl.col("frequency") <= 0)).then(1).otherwise(pl.col("r")),
        fm=(pl.col("f") + pl.col("m") + 1) // 2,
    ).with_columns(
        segment=pl.when(pl.col("lifetime") > 0)
        .then(pl.concat_str(pl.col("r"), pl.lit(","), pl.col("fm")).replace_strict(segment_of))
        .otherwise(pl.lit("none")),
        abc=pl.when(pl.col("frequency") <= 0)
        .then(pl.lit("none"))
        .when(pl.col("monetary") >= a_min)
        .then(pl.lit("A"))
        .when(pl.col("monetary") >= b_min)
        .then(pl.lit("B"))
        .otherwise(pl.lit("C")),
    )
    # The default tier rules, from the top down.
    everyone = everyone.with_columns(
        tier=pl.when(
            ((pl.col("monetary") >= 5_000_000) & (pl.col("frequency") >= 5))
            | ((pl.col("frequency") > 0) & (pl.col("monetary") >= platinum_min) & ~pl.col("lost"))
        )
        .then(pl.lit("platinum"))
        .when((pl.col("monetary") >= 1_000_000) | (pl.col("abc") == "A"))
        .then(pl.lit("gold"))
        .when((pl.col("monetary") >= 100_000) | (pl.col("abc") == "B"))
        .then(pl.lit("iron"))
        .otherwise(pl.lit("lead"))
    )

    def counts(column: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in everyone[column].value_counts().iter_rows()}

    return {
        "top_share_of_revenue": top_share,
        "buyers": n,
        "dormant": int(everyone.filter((pl.col("lifetime") > 0) & (pl.col("frequency") == 0)).height),
        "tier": counts("tier"),
        "segment": counts("segment"),
        "abc_class": counts("abc"),
    }


async def event_ids(url: str, query: str) -> set[uuid.UUID]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return {uuid.UUID(str(value)) for value in (await connection.scalars(sa.text(query))).all()}
    finally:
        await engine.dispose()


async def test_a_company_moves_in_its_history_is_analysed_as_of_its_last_day_and_nobody_is_messaged(
    tmp_path: Path, databases: Databases
) -> None:
    urls = {name: await databases.create(name, migrate=False) for name in SERVICES}
    end = datetime.now(UTC).date() - timedelta(days=730)
    customers, purchases = write_history(tmp_path, end)
    system = System(tmp_path, urls)
    csm = str(Path(sys.executable).parent / "csm")
    env = {**system.env, "CSM_VAR_DIR": str(tmp_path / "var"), "CSM_CUSTOMER_DATABASE_URL": urls["customer"]}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([csm, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    system.start()
    try:
        await system.wait_ready()
        imported = await asyncio.to_thread(run, "import", "customers", str(customers), "--quiet")
        assert f"{CUSTOMERS:,} imported" in imported.stdout, imported.stdout
        orders = sum(1 for _ in purchases.open(encoding="utf-8")) - 1
        imported = await asyncio.to_thread(
            run,
            "import",
            "purchases",
            str(purchases),
            "--date-format",
            LAYOUT,
            "--time-zone",
            ZONE,
            "--quiet",
        )
        assert f"{orders:,} imported" in imported.stdout and "0 rejected" in imported.stdout, imported.stdout

        # Over the real broker into segmentation's ledger.
        deadline = asyncio.get_running_loop().time() + 120
        while await count(urls["segmentation"], "SELECT count(*) FROM purchase") < orders:
            assert asyncio.get_running_loop().time() < deadline, system.log_tail()
            await asyncio.sleep(0.5)

        # Analysed as of the history's last day, from the command line.
        segmentation = system.url("segmentation")
        await asyncio.to_thread(
            run, "segmentation", "recompute", "--as-of", end.isoformat(), "--url", segmentation
        )
        as_of = datetime.combine(end, time.max, tzinfo=UTC)
        expected = expected_figures(customers, purchases, as_of)
        shown = await asyncio.to_thread(run, "segmentation", "figures", "--url", segmentation)
        figures = json.loads(shown.stdout)
        distribution, pareto = figures["distribution"], figures["pareto"]
        coverage = distribution["coverage"]
        assert datetime.fromisoformat(coverage["as_of"]) == as_of and coverage["pinned"] is True
        assert (coverage["buyers"], coverage["dormant"]) == (expected["buyers"], expected["dormant"])
        assert pareto["top_share_of_revenue"] == pytest.approx(expected["top_share_of_revenue"], rel=1e-12)
        for figure in ("abc_class", "segment", "tier"):
            assert distribution[figure] == expected[figure], figure
        tiers = distribution["tier"]
        assert 0 < tiers["platinum"] < tiers["gold"] < tiers["iron"] < tiers["lead"], tiers

        # Nobody is messaged: once notify has taken in every move segmentation announced.
        announced = await event_ids(
            urls["segmentation"],
            "SELECT event_id FROM outbox_message WHERE event_type LIKE 'csm.segment.%'",
        )
        deadline = asyncio.get_running_loop().time() + 120
        while announced - await event_ids(urls["notify"], "SELECT event_id FROM inbox_message"):
            assert asyncio.get_running_loop().time() < deadline, system.log_tail()
            await asyncio.sleep(0.5)
        assert await count(urls["notify"], "SELECT count(*) FROM notification") == 0
    finally:
        system.stop()
