"""Full recompute of the population beside a plain Polars RFM over the same purchases, in the same run.

``python -m bench segmentation_recompute [--customers 1000000] [--purchases 10000000] [--database-url URL]``

Setup (not timed): purchases are drawn (seeded), written to a fresh segmentation database as the
purchase ledger and the per-customer figures the per-event path keeps, and a first batch
assigns everyone. Then the clock moves a day (the schedule's step) and three things are timed:

- recompute: the service's batch (move the window, cut points, ABC, BG/NBD fit on a sample,
  everyone re-assessed, changed rows written and movers announced), in one transaction;
- plain Polars: recency, frequency and monetary per customer from the 10M purchases in memory,
  and quintile scores 1-5, nothing written (the baseline the goal refers to);
- first assignment: the setup's first batch, when everyone is new (reported, not a goal);
- as of a past date: a recompute pinned to an analysis date half a year back, which rebuilds
  everyone's figures from the purchase ledger (one grouped query) before the batch (reported
  beside the plain Polars RFM as of the same date, not a goal).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.report import Figure, Report
from services.segmentation import batch
from shared import migrations
from shared.db import Database

NOW = datetime(2026, 11, 1, tzinfo=UTC)
HISTORY_DAYS = 730


def draw(customers: int, purchases: int, seed: int) -> pl.DataFrame:
    """Purchases of a skewed population: a few customers buy often and much, most rarely."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.5, customers) + 0.05
    owner = rng.choice(customers, purchases, p=weights / weights.sum())
    amount = np.round(rng.lognormal(5.0, 1.0, purchases) * 100).astype(np.int64) + 100
    age = rng.uniform(0, HISTORY_DAYS * 86_400, purchases)
    stamp = NOW.timestamp() - age
    return pl.DataFrame({"customer": owner, "amount_minor": amount, "at": stamp})


def plain_polars(frame: pl.DataFrame, now: float, window_start: float) -> tuple[float, pl.DataFrame]:
    """The same RFM the service computes, the plain way: group by customer, rank into quintiles."""
    started = time.perf_counter()
    rfm = (
        frame.group_by("customer")
        .agg(
            recency_days=((now - pl.col("at").max()) / 86_400).floor(),
            frequency=(pl.col("at") >= window_start).sum(),
            monetary=pl.when(pl.col("at") >= window_start).then(pl.col("amount_minor")).otherwise(0).sum(),
        )
        .with_columns(
            r=(6 - (pl.col("recency_days").rank("average") / pl.len() * 5).ceil().clip(1, 5)),
            f=(pl.col("frequency").rank("average") / pl.len() * 5).ceil().clip(1, 5),
            m=(pl.col("monetary").rank("average") / pl.len() * 5).ceil().clip(1, 5),
        )
    )
    return time.perf_counter() - started, rfm


def _sqlite_times(seconds: np.ndarray) -> list[str]:
    """How the UtcDateTime column stores times on SQLite: naive UTC text, microseconds."""
    text = np.datetime_as_string((seconds * 1e6).astype("datetime64[us]"), unit="us")
    return [t.replace("T", " ") for t in text.tolist()]


def _customer_id(index: int) -> uuid.UUID:
    return uuid.UUID(int=(index + 1) << 64 | 0x4000_8000_0000_0000)


def load_sqlite(path: str, frame: pl.DataFrame, customers: int, window_start: datetime) -> None:
    """The ledger and per-customer figures, as the per-event path would have left them (bulk, for speed)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        owner = frame["customer"].to_numpy()
        amount = frame["amount_minor"].to_numpy()
        stamp = frame["at"].to_numpy()
        hex_ids = [_customer_id(i).hex for i in range(customers)]
        chunk = 1_000_000
        for begin in range(0, len(owner), chunk):
            end = min(begin + chunk, len(owner))
            times = _sqlite_times(stamp[begin:end])
            connection.executemany(
                "INSERT INTO purchase (purchase_id, customer_id, amount_minor, purchased_at, fully_refunded) "
                "VALUES (?, ?, ?, ?, 0)",
                zip(
                    (f"{i:032x}" for i in range(begin, end)),
                    (hex_ids[o] for o in owner[begin:end].tolist()),
                    amount[begin:end].tolist(),
                    times,
                    strict=True,
                ),
            )
            connection.commit()
        start = window_start.timestamp()
        figures = (
            frame.group_by("customer")
            .agg(
                lifetime_frequency=pl.len(),
                lifetime_monetary=pl.col("amount_minor").sum(),
                first=pl.col("at").min(),
                last=pl.col("at").max(),
                frequency=(pl.col("at") >= start).sum(),
                monetary=pl.when(pl.col("at") >= start).then(pl.col("amount_minor")).otherwise(0).sum(),
                purchase_days=(pl.col("at") // 86_400).n_unique(),
            )
            .sort("customer")
        )
        firsts = _sqlite_times(figures["first"].to_numpy())
        lasts = _sqlite_times(figures["last"].to_numpy())
        created = (NOW - timedelta(days=HISTORY_DAYS)).replace(tzinfo=None).isoformat(sep=" ")
        buyers = set(figures["customer"].to_list())
        connection.executemany(
            "INSERT INTO customer_segment (customer_id, frequency, monetary_minor, lifetime_frequency, "
            "lifetime_monetary_minor, first_purchase_at, last_purchase_at, engaged, signal_points, "
            "key_account, "
            "tier, initial_tier, tier_rule, stage, risk, risk_reason, policy_version, cut_points_version, "
            "created_at, updated_at, purchase_days) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 'lead', 'lead', "
            "'lead: none', 'suspicion', 'low', '', 1, 0, ?, ?, ?)",
            (
                (hex_ids[c], f, m, lf, lm, fi, la, created, created, days)
                for (c, lf, lm, _, _, f, m, days), fi, la in zip(
                    figures.iter_rows(), firsts, lasts, strict=True
                )
            ),
        )
        connection.executemany(
            "INSERT INTO customer_segment (customer_id, frequency, monetary_minor, lifetime_frequency, "
            "lifetime_monetary_minor, engaged, signal_points, key_account, tier, initial_tier, tier_rule, "
            "stage, "
            "risk, risk_reason, policy_version, cut_points_version, created_at, updated_at) VALUES "
            "(?, 0, 0, 0, 0, 0, 0, 0, 'lead', 'lead', 'lead: none', 'suspicion', 'low', '', 1, 0, ?, ?)",
            ((hex_ids[c], created, created) for c in range(customers) if c not in buyers),
        )
        connection.execute(
            "UPDATE segmentation_state SET window_start = ?",
            (window_start.replace(tzinfo=None).isoformat(sep=" "),),
        )
        connection.commit()
    finally:
        connection.close()


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        "segmentation_recompute",
        {"customers": args.customers, "purchases": args.purchases, "database": "sqlite"},
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(args.directory or tmp) / "segmentation_bench.db")
        url = f"sqlite+aiosqlite:///{path}"
        await migrations.upgrade("segmentation", url)  # the real schema, then a bulk load into it
        db = Database(url)
        try:
            frame = draw(args.customers, args.purchases, args.seed)
            yesterday = NOW - timedelta(days=1)
            started = time.perf_counter()
            # The window the loaded figures count from is yesterday's.
            load_sqlite(path, frame, args.customers, yesterday - timedelta(days=365))
            print(f"loaded in {time.perf_counter() - started:.1f}s", flush=True)
            async with db.unit_of_work() as session:
                first = await batch.recompute(
                    session=session, now=yesterday, trigger="bench: first assignment"
                )
            print(f"first assignment {first.seconds:.1f}s, {first.announced} announced", flush=True)

            async with db.unit_of_work() as session:
                started = time.perf_counter()
                outcome = await batch.recompute(session=session, now=NOW, trigger="bench: a day later")
            service_seconds = time.perf_counter() - started
            window_start = (NOW - timedelta(days=365)).timestamp()
            plain_seconds, _ = plain_polars(frame, NOW.timestamp(), window_start)
            report.add(
                Figure(
                    "full recompute (a day later)",
                    service_seconds,
                    "s",
                    plain_seconds,
                    "plain Polars RFM in memory",
                    goal="<= 3x baseline",
                )
            )
            report.add(Figure("  customers rewritten", outcome.rewritten, "rows"))
            report.add(Figure("  customers announced", outcome.announced, "events"))
            report.add(
                Figure(
                    "first assignment (everyone new)",
                    first.seconds,
                    "s",
                    plain_seconds,
                    "plain Polars RFM in memory",
                )
            )
            report.add(Figure("  customers announced", first.announced, "events"))

            as_of = NOW - timedelta(days=180)
            async with db.unit_of_work() as session:
                started = time.perf_counter()
                pinned = await batch.recompute(session=session, now=NOW, trigger="bench: as of", as_of=as_of)
            pinned_seconds = time.perf_counter() - started
            before = frame.filter(pl.col("at") <= as_of.timestamp())
            plain_as_of, _ = plain_polars(
                before, as_of.timestamp(), (as_of - timedelta(days=365)).timestamp()
            )
            report.add(
                Figure(
                    "recompute as of 180 days back (from the ledger)",
                    pinned_seconds,
                    "s",
                    plain_as_of,
                    "plain Polars RFM in memory, as of then",
                )
            )
            report.add(Figure("  customers announced", pinned.announced, "events"))
        finally:
            await db.dispose()
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="segmentation_recompute")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument(
        "--directory", default=None, help="where the SQLite database goes (a temporary one if not given)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    print(report.render())
    print(f"saved {report.save()}")
    return 0
