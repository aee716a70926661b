"""Full recompute of the population beside a plain Polars RFM over the same purchases, in the same run.

``python -m bench segmentation_recompute [--customers 1000000] [--purchases 10000000]
[--database-url postgresql+asyncpg://user@host:port] [--profile]``

Setup (not timed): purchases are drawn (seeded), written to a fresh segmentation database (a
SQLite file, or with ``--database-url`` a throwaway PostgreSQL database, dropped at the end) as
the purchase ledger and the per-customer figures the per-event path keeps, and a first batch
assigns everyone. Then the clock moves a day (the schedule's step) and these are timed:

- recompute: the service's batch (read everyone, move the window, cut points, ABC, BG/NBD fit on
  a sample, everyone re-assessed, changed rows written and movers announced), in one transaction;
  its columnar read of the population alone is reported beneath it;
- plain Polars: recency, frequency and monetary per customer from the purchases in memory,
  and quintile scores 1-5, nothing written (the first baseline the goal refers to);
- plain DuckDB: DuckDB attaches the same database itself and scores recency, frequency and
  monetary in quintiles in one query, into Arrow, nothing written: over the per-customer figures
  (the rows the batch reads: the second baseline of the goal), and over the purchase ledger;
- first assignment: the setup's first batch, when everyone is new (reported, not a goal);
- as of a past date: a recompute pinned to an analysis date half a year back, which rebuilds
  everyone's figures from the purchase ledger (one grouped query) before the batch (reported
  beside the plain Polars RFM as of the same date, not a goal).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import numpy as np
import polars as pl
from sqlalchemy.engine import make_url

from bench.report import Figure, Report
from services.segmentation import batch, columnar
from services.segmentation.policy import DEFAULT_POLICY
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


def per_customer(frame: pl.DataFrame, window_start: datetime) -> pl.DataFrame:
    """The figures the per-event path keeps for each buyer."""
    start = window_start.timestamp()
    return (
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
        figures = per_customer(frame, window_start)
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


def _moments(seconds: np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(t, UTC) for t in seconds.tolist()]


async def load_postgres(url: str, frame: pl.DataFrame, customers: int, window_start: datetime) -> None:
    """The same rows as ``load_sqlite``, into PostgreSQL with COPY."""
    connection = await asyncpg.connect(_dsn(url))
    try:
        ids = [_customer_id(i) for i in range(customers)]
        owner, amount, stamp = (frame[name].to_numpy() for name in ("customer", "amount_minor", "at"))
        chunk = 1_000_000
        for begin in range(0, len(owner), chunk):
            end = min(begin + chunk, len(owner))
            await connection.copy_records_to_table(
                "purchase",
                columns=["purchase_id", "customer_id", "amount_minor", "purchased_at", "fully_refunded"],
                records=zip(
                    (uuid.UUID(int=i) for i in range(begin, end)),
                    (ids[o] for o in owner[begin:end].tolist()),
                    amount[begin:end].tolist(),
                    _moments(stamp[begin:end]),
                    [False] * (end - begin),
                    strict=True,
                ),
            )
        figures = per_customer(frame, window_start)
        created = NOW - timedelta(days=HISTORY_DAYS)
        buyers = set(figures["customer"].to_list())
        common = [
            False,
            0.0,
            False,
            "lead",
            "lead",
            "lead: none",
            "suspicion",
            "low",
            "",
            1,
            0,
            created,
            created,
        ]
        columns = [
            "customer_id",
            "frequency",
            "monetary_minor",
            "lifetime_frequency",
            "lifetime_monetary_minor",
            "first_purchase_at",
            "last_purchase_at",
            "purchase_days",
            "engaged",
            "signal_points",
            "key_account",
            "tier",
            "initial_tier",
            "tier_rule",
            "stage",
            "risk",
            "risk_reason",
            "policy_version",
            "cut_points_version",
            "created_at",
            "updated_at",
        ]
        bought = [
            (ids[c], f, m, lf, lm, first, last, days, *common)
            for (c, lf, lm, _, _, f, m, days), first, last in zip(
                figures.iter_rows(),
                _moments(figures["first"].to_numpy()),
                _moments(figures["last"].to_numpy()),
                strict=True,
            )
        ]
        never = [(ids[c], 0, 0, 0, 0, None, None, 0, *common) for c in range(customers) if c not in buyers]
        await connection.copy_records_to_table("customer_segment", columns=columns, records=bought + never)
        await connection.execute("UPDATE segmentation_state SET window_start = $1", window_start)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _throwaway_database(server: str) -> str:
    name = f"csm_bench_segmentation_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(_dsn(f"{server.rstrip('/')}/postgres"))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{server.rstrip('/')}/{name}"


async def _drop_database(server: str, url: str) -> None:
    connection = await asyncpg.connect(_dsn(f"{server.rstrip('/')}/postgres"))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await connection.close()


# Quintile scores 1-5 the plain way (as plain_polars: higher rank, higher score; recency reversed).
_DUCKDB_SCORES = """
SELECT customer_id,
       6 - least(greatest(ceil(cume_dist() OVER (ORDER BY recency_days) * 5), 1), 5) AS r,
       least(greatest(ceil(cume_dist() OVER (ORDER BY frequency) * 5), 1), 5) AS f,
       least(greatest(ceil(cume_dist() OVER (ORDER BY monetary) * 5), 1), 5) AS m
FROM ({figures})
"""
_FROM_FIGURES = """
SELECT customer_id, floor(($now - epoch(last_purchase_at)) / 86400) AS recency_days,
       frequency, monetary_minor AS monetary
FROM segmentation.customer_segment
"""
_FROM_LEDGER = """
SELECT customer_id, floor(($now - max(epoch(purchased_at))) / 86400) AS recency_days,
       count(*) FILTER (WHERE epoch(purchased_at) >= $start) AS frequency,
       coalesce(sum(amount_minor) FILTER (WHERE epoch(purchased_at) >= $start), 0) AS monetary
FROM segmentation.purchase GROUP BY customer_id
"""


def plain_duckdb(url: str, figures: str, now: float, window_start: float) -> tuple[float, int]:
    """DuckDB reads the database itself and scores everyone, into Arrow: (seconds, customers)."""
    connection = columnar.connect(make_url(url))
    try:
        query = _DUCKDB_SCORES.format(figures=figures)
        started = time.perf_counter()
        values = {
            name: value for name, value in (("now", now), ("start", window_start)) if f"${name}" in query
        }
        scored = connection.execute(query, values).fetch_arrow_table()
        return time.perf_counter() - started, scored.num_rows
    finally:
        connection.close()


def _read_only(url: str) -> float:
    started = time.perf_counter()
    columnar.read_population(make_url(url), batch.vocabularies(DEFAULT_POLICY))
    return time.perf_counter() - started


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        "segmentation_recompute",
        {
            "customers": args.customers,
            "purchases": args.purchases,
            "database": "postgresql" if args.database_url else "sqlite",
        },
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(args.directory or tmp) / "segmentation_bench.db")
        url = (
            await _throwaway_database(args.database_url)
            if args.database_url
            else f"sqlite+aiosqlite:///{path}"
        )
        await migrations.upgrade("segmentation", url)  # the real schema, then a bulk load into it
        db = Database(url)
        try:
            frame = draw(args.customers, args.purchases, args.seed)
            yesterday = NOW - timedelta(days=1)
            started = time.perf_counter()
            # The window the loaded figures count from is yesterday's.
            if args.database_url:
                await load_postgres(url, frame, args.customers, yesterday - timedelta(days=365))
            else:
                load_sqlite(path, frame, args.customers, yesterday - timedelta(days=365))
            print(f"loaded in {time.perf_counter() - started:.1f}s", flush=True)
            async with db.unit_of_work() as session:
                first = await batch.recompute(
                    session=session, now=yesterday, trigger="bench: first assignment"
                )
            print(f"first assignment {first.seconds:.1f}s, {first.announced} announced", flush=True)

            profile = cProfile.Profile() if args.profile else None
            async with db.unit_of_work() as session:
                started = time.perf_counter()
                if profile:
                    profile.enable()
                outcome = await batch.recompute(session=session, now=NOW, trigger="bench: a day later")
            if profile:
                profile.disable()
            service_seconds = time.perf_counter() - started
            window_start = (NOW - timedelta(days=365)).timestamp()
            plain_seconds, _ = plain_polars(frame, NOW.timestamp(), window_start)
            # No connection of the service's may be open while DuckDB's own SQLite library has the
            # file open in this process (see services/segmentation/columnar.py); the pool reconnects.
            await db.dispose()
            figures_seconds, scored = await asyncio.to_thread(
                plain_duckdb, url, _FROM_FIGURES, NOW.timestamp(), window_start
            )
            assert scored == args.customers
            ledger_seconds, _ = await asyncio.to_thread(
                plain_duckdb, url, _FROM_LEDGER, NOW.timestamp(), window_start
            )
            read_seconds = await asyncio.to_thread(_read_only, url)
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
            report.add(
                Figure(
                    "full recompute (a day later)",
                    service_seconds,
                    "s",
                    figures_seconds,
                    "plain DuckDB RFM scores of the per-customer rows, read from the database",
                    goal="<= 1.5x baseline",
                )
            )
            report.add(
                Figure(
                    "full recompute (a day later)",
                    service_seconds,
                    "s",
                    ledger_seconds,
                    "plain DuckDB RFM of the purchase ledger, read from the database",
                )
            )
            report.add(Figure("  of which the columnar read of everyone (alone)", read_seconds, "s"))
            report.add(Figure("  customers rewritten", outcome.rewritten, "rows"))
            report.add(Figure("  customers announced", outcome.announced, "events"))
            if profile:
                text = io.StringIO()
                pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(30)
                print(text.getvalue())
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
            if args.database_url:
                await _drop_database(args.database_url, url)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="segmentation_recompute")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument(
        "--directory", default=None, help="where the SQLite database goes (a temporary one if not given)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server (postgresql+asyncpg://user@host:port): a throwaway database there",
    )
    parser.add_argument("--profile", action="store_true", help="print cProfile's top of the recompute")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    print(report.render())
    print(f"saved {report.save()}")
    return 0
