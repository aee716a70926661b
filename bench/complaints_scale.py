"""Complaints at scale: the deadline scanner's cost per tick and intake throughput with p99 latency,
on a database holding a million complaints of which a hundred thousand are open.

    python -m bench complaints_scale [--stored N] [--open N] [--requests N] [--concurrency N]
                                     [--database-url URL]

Baselines, measured in the same run on the same database: a bare single-row INSERT of a
complaint in its own transaction (what intake costs at the least), at the same concurrency.
Intake goes through the real app in-process (routing, token check, validation, the promise's
computation, the complaint, its first step, its clocks and its event in one transaction); the
outbox relay is not running, so no broker is needed. To tell the edge from intake's own work it
also times the service function alone (same request, own unit of work, no HTTP) and ``/healthz``
through the same middlewares. With PostgreSQL the URL names a server
(``postgresql+asyncpg://user@host:5432``): a database ``complaints_bench_*`` is created and dropped.

The in-process client (httpx over ASGI) runs in the service's own process and costs about a fifth of
each request there. So intake is also measured as it runs: the service under uvicorn in a process of
its own, set as ``csm serve`` sets it, and a client in a second process sending raw HTTP/1.1 over
``--concurrency`` keep-alive connections (the 360 benchmark's method); the server's CPU per request is
read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.report import Figure, Report, percentile
from bench.servers import cpu_seconds, in_client_process, read_response, serve, wait_until_up
from services.complaints import service
from services.complaints.app import create_app
from services.complaints.models import Complaint, SlaClock, Transition
from services.complaints.scanner import scan_once
from services.complaints.schemas import ComplaintCreate
from services.complaints.settings import ComplaintsSettings
from shared import migrations
from shared.auth import mint_token
from shared.broker import EmbeddedBroker, free_port
from shared.clock import ManualClock
from shared.db import Database
from shared.process import tune_gc
from shared.roles import Role
from shared.settings import CommonSettings

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
CATEGORIES = ["product_quality", "delivery", "billing", "staff_attitude", "installation_after_sales", "other"]
CHANNELS = ["phone", "web", "email", "chat", "in_person", "app"]
TIERS = ["platinum", "gold", "iron", "lead", None]
CHUNK = 10_000


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench complaints_scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--stored", type=int, default=1_000_000, help="complaints stored (default 1,000,000)")
    parser.add_argument("--open", type=int, default=100_000, help="of which open (default 100,000)")
    parser.add_argument("--requests", type=int, default=2_000, help="intake requests to time (default 2,000)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    parser.add_argument(
        "--ticks", type=int, default=20, help="scanner ticks of each kind to time (default 20)"
    )
    parser.add_argument(
        "--batch", type=int, default=200, help="complaints one busy tick handles (default 200)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server URL; default a fresh SQLite file in a temporary folder",
    )
    return parser.parse_args(argv)


def rows(stored: int, open_count: int, seed: int = 7) -> Iterator[tuple[list[dict[str, Any]], ...]]:
    """Complaints, their clocks and first steps, in chunks: the last ``open_count`` are open."""
    rng = random.Random(seed)
    for start in range(0, stored, CHUNK):
        complaints, clocks, steps = [], [], []
        for index in range(start, min(start + CHUNK, stored)):
            complaint_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            is_open = index >= stored - open_count
            opened = NOW - timedelta(minutes=rng.randint(10, 60 * 24 * 365))
            if is_open:
                opened = NOW - timedelta(minutes=rng.randint(0, 60))
            due = opened + timedelta(hours=48)
            # Open complaints have their next warning ahead; an idle tick finds nothing due.
            next_check = NOW + timedelta(minutes=rng.randint(30, 60 * 48)) if is_open else None
            complaints.append(
                {
                    "id": complaint_id,
                    "customer_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                    "channel": rng.choice(CHANNELS),
                    "category": rng.choice(CATEGORIES),
                    "severity": "normal",
                    "description": "The parcel arrived a week late and the box was crushed.",
                    "desired_outcome": None,
                    "attachments": [],
                    "status": "acknowledged" if is_open else "closed",
                    "steps": 1,
                    "first_owner": f"agent-{rng.randint(1, 500)}",
                    "assignee": None,
                    "source": "api",
                    "opened_at": opened,
                    "tier": rng.choice(TIERS),
                    "key_account": False,
                    "policy_version": 0,
                    "cycle": 1,
                    "visit_required": False,
                    "visited_at": None,
                    "first_response_at": opened + timedelta(minutes=30),
                    "escalation_level": 0,
                    "escalation_due_at": None,
                    "escalated_at": None,
                    "next_check_at": next_check,
                    "resolved_at": None if is_open else opened + timedelta(hours=20),
                    "closed_at": None if is_open else opened + timedelta(days=3),
                    "resolution_summary": None if is_open else "Re-sent by courier.",
                    "root_cause": None if is_open else "carrier_delay",
                    "first_contact_resolution": None,
                    "within_sla": None if is_open else True,
                    "compensation_minor": 0,
                    "reopen_count": 0,
                    "erased_at": None,
                    "created_at": opened,
                    "updated_at": opened,
                }
            )
            clocks.append(
                {
                    "complaint_id": complaint_id,
                    "cycle": 1,
                    "target": "first_response",
                    "target_seconds": 7200,
                    "calendar": "24x7",
                    "due_at": opened + timedelta(hours=2),
                    "warn_at": opened + timedelta(minutes=90),
                    "warned_at": None,
                    "breached_at": None,
                    "met_at": opened + timedelta(minutes=30),
                }
            )
            clocks.append(
                {
                    "complaint_id": complaint_id,
                    "cycle": 1,
                    "target": "resolution",
                    "target_seconds": 172800,
                    "calendar": "24x7",
                    "due_at": due,
                    "warn_at": next_check if is_open else due - timedelta(hours=12),
                    "warned_at": None,
                    "breached_at": None,
                    "met_at": None if is_open else opened + timedelta(hours=20),
                }
            )
            steps.append(
                {
                    "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                    "complaint_id": complaint_id,
                    "step": 0,
                    "cycle": 1,
                    "from_status": None,
                    "to_status": "new",
                    "actor": "agent-1",
                    "reason": None,
                    "at": opened,
                }
            )
        yield complaints, clocks, steps


async def populate(db: Database, stored: int, open_count: int) -> None:
    for complaints, clocks, steps in rows(stored, open_count):
        async with db.unit_of_work() as session:
            # Core inserts of whole chunks: the ORM's per-row bookkeeping would dominate the fill.
            await session.execute(sa.insert(Complaint.__table__), complaints)
            await session.execute(sa.insert(SlaClock.__table__), clocks)
            await session.execute(sa.insert(Transition.__table__), steps)


async def make_due(db: Database, count: int, at: datetime) -> None:
    """Bring the next check of ``count`` open complaints to ``at`` (their resolution warning)."""
    async with db.unit_of_work() as session:
        ids = (
            await session.scalars(
                sa.select(Complaint.id)
                .where(Complaint.next_check_at > at)
                .order_by(Complaint.next_check_at)
                .limit(count)
            )
        ).all()
        await session.execute(sa.update(Complaint).where(Complaint.id.in_(ids)).values(next_check_at=at))
        await session.execute(
            sa.update(SlaClock)
            .where(SlaClock.complaint_id.in_(ids), SlaClock.target == "resolution")
            .values(warn_at=at)
        )


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def load(
    count: int, concurrency: int, call: Callable[[int], Awaitable[object]]
) -> tuple[float, list[float]]:
    """Run ``count`` calls, ``concurrency`` at a time; the wall time and each call's latency."""
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for number in queue:
            started = time.perf_counter()
            await call(number)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def bare_insert(db: Database) -> Callable[[int], Awaitable[object]]:
    async def insert(number: int) -> None:
        async with db.unit_of_work() as session:
            await session.execute(
                sa.insert(Complaint),
                [
                    {
                        "id": uuid.uuid4(),
                        "customer_id": uuid.uuid4(),
                        "channel": "phone",
                        "category": "delivery",
                        "severity": "normal",
                        "description": f"Bare insert {number}",
                        "attachments": [],
                        "status": "new",
                        "steps": 0,
                        "first_owner": "bench",
                        "source": "api",
                        "opened_at": NOW,
                        "key_account": False,
                        "policy_version": 0,
                        "cycle": 1,
                        "visit_required": False,
                        "escalation_level": 0,
                        "compensation_minor": 0,
                        "reopen_count": 0,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                ],
            )

    return insert


def intake_in_process(db: Database, label: str) -> Callable[[int], Awaitable[object]]:
    """Intake's own work without the HTTP edge: the service function the route calls, in its own
    unit of work, with the same request (no token, middlewares, validation or serialisation)."""

    async def take(number: int) -> None:
        complaint_in = ComplaintCreate.model_validate(
            {
                "customer_id": str(uuid.uuid4()),
                "channel": "app",
                "category": "delivery",
                "description": f"Intake benchmark {number}",
            }
        )
        async with db.unit_of_work() as session:
            await service.open_complaint(
                session=session,
                complaint_in=complaint_in,
                first_owner="bench-agent",
                now=NOW,
                currency="CNY",
                idempotency_key=f"{label}-{number}",
                idempotency_scope="bench-agent POST /complaints",
            )

    return take


def health(client: httpx.AsyncClient) -> Callable[[int], Awaitable[object]]:
    async def get(_number: int) -> None:
        response = await client.get("/healthz")
        if response.status_code != 200:
            raise RuntimeError(f"/healthz answered {response.status_code}")

    return get


def intake(client: httpx.AsyncClient, token: str, label: str) -> Callable[[int], Awaitable[object]]:
    async def post(number: int) -> None:
        response = await client.post(
            "/complaints",
            json={
                "customer_id": str(uuid.uuid4()),
                "channel": "app",
                "category": "delivery",
                "description": f"Intake benchmark {number}",
            },
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"{label}-{number}"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"intake answered {response.status_code}: {response.text[:200]}")

    return post


def served_app() -> Any:
    """The complaints service as ``csm serve`` runs it, its settings from the environment."""
    settings = ComplaintsSettings()
    tune_gc(settings.common.gc_young_threshold)
    return create_app(settings)


def _intake_request(token: str, label: str, number: int) -> bytes:
    body = json.dumps(
        {
            "customer_id": str(uuid.uuid4()),
            "channel": "app",
            "category": "delivery",
            "description": f"Intake benchmark {number}",
        }
    ).encode()
    head = (
        "POST /complaints HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nIdempotency-Key: {label}-{number}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _post_intakes(
    port: int, token: str, label: str, count: int, concurrency: int
) -> tuple[float, list[float]]:
    """``count`` intake requests over ``concurrency`` keep-alive connections, each sending its next
    request when the last is answered; the wall time and each request's latency."""
    requests = iter([_intake_request(token, label, n) for n in range(count)])
    latencies: list[float] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in requests:
                started = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status != 201:
                    raise RuntimeError(f"intake answered {status}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def post_intakes(
    server: subprocess.Popen[bytes], port: int, token: str, label: str, count: int, concurrency: int
) -> tuple[float, list[float], float | None]:
    """``_post_intakes`` from a second process; with the server's CPU seconds over the run."""
    cpu_before = cpu_seconds(server.pid)
    wall, latencies = in_client_process(
        _post_intakes, port=port, token=token, label=label, count=count, concurrency=concurrency
    )
    cpu_after = cpu_seconds(server.pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return wall, latencies, cpu


async def served_intake(
    url: str, options: argparse.Namespace, token: str
) -> tuple[float, list[float], float | None]:
    """Intake against the service in its own process (see the module's text)."""
    broker = EmbeddedBroker().start()
    port = free_port()
    env = {
        "CSM_COMPLAINTS_DATABASE_URL": url,
        "CSM_COMPLAINTS_RUN_WORKERS": "false",
        "CSM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CSM_RATE_LIMITS_ENABLED": "false",
        "CSM_ENV": "test",
        "CSM_LOG_LEVEL": "WARNING",
    }
    server = serve("bench.complaints_scale:served_app", port, env, workers=1)
    try:
        await wait_until_up(port, "/healthz", {})
        post_intakes(server, port, token, "served-warm-up", 50, options.concurrency)
        return post_intakes(server, port, token, "served", options.requests, options.concurrency)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        broker.stop()


async def prepare_database(server: str | None, folder: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    if server is None:
        return f"sqlite+aiosqlite:///{folder / 'complaints_bench.db'}", _nothing
    name = f"complaints_bench_{uuid.uuid4().hex[:8]}"
    admin = (
        make_url(server)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )
    connection = await asyncpg.connect(admin)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()

    async def drop() -> None:
        connection = await asyncpg.connect(admin)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    return f"{server.rstrip('/')}/{name}", drop


async def _nothing() -> None:
    return None


async def run(options: argparse.Namespace) -> Report:
    with tempfile.TemporaryDirectory() as folder:
        url, drop = await prepare_database(options.database_url, Path(folder))
        try:
            return await measure(options, url)
        finally:
            await drop()


async def measure(options: argparse.Namespace, url: str) -> Report:
    await migrations.upgrade("complaints", url)
    db = Database(url)
    report = Report(
        "complaints_scale",
        {
            "database": db.dialect,
            "stored": options.stored,
            "open": options.open,
            "requests": options.requests,
            "concurrency": options.concurrency,
            "ticks": options.ticks,
            "batch": options.batch,
        },
    )
    try:
        fill = await timed(lambda: populate(db, options.stored, options.open))
        print(f"stored {options.stored:,} complaints ({options.open:,} open) in {fill:.0f}s")
        if db.dialect == "postgresql":
            async with db.engine.connect() as connection:
                await connection.execute(sa.text("ANALYZE"))

        # Baselines: bare inserts one at a time (beside the scanner, which works alone) and at the
        # intake's concurrency (beside intake).
        _, bare_one = await load(options.requests, 1, bare_insert(db))
        bare_wall, bare_many = await load(options.requests, options.concurrency, bare_insert(db))
        one_mean = sum(bare_one) / len(bare_one) * 1000

        idle = [
            await timed(lambda: scan_once(db=db, now=NOW, batch_size=options.batch, currency="CNY"))
            for _ in range(options.ticks)
        ]
        busy: list[float] = []
        handled = 0
        for tick in range(options.ticks):
            at = NOW + timedelta(seconds=tick + 1)
            await make_due(db, options.batch, at)
            started = time.perf_counter()
            done = await scan_once(db=db, now=at, batch_size=options.batch, currency="CNY")
            busy.append(time.perf_counter() - started)
            handled += done.warnings
        if handled != options.batch * options.ticks:
            raise RuntimeError(
                f"the busy ticks warned {handled} complaints, not {options.batch * options.ticks}"
            )
        report.add(
            Figure(
                "scanner tick, nothing due (median)",
                percentile(idle, 0.5) * 1000,
                "ms",
                baseline=one_mean,
                baseline_name="one bare insert, mean",
            )
        )
        report.add(
            Figure(
                "scanner tick, nothing due (p99)",
                percentile(idle, 0.99) * 1000,
                "ms",
                baseline=percentile(bare_one, 0.99) * 1000,
                baseline_name="one bare insert, p99",
            )
        )
        report.add(
            Figure(
                f"scanner tick, {options.batch} warnings due (median)",
                percentile(busy, 0.5) * 1000,
                "ms",
                baseline=one_mean * options.batch,
                baseline_name=f"{options.batch} bare inserts one by one",
            )
        )
        report.add(
            Figure(
                "scanner, per complaint warned",
                percentile(busy, 0.5) * 1000 / options.batch,
                "ms",
                baseline=one_mean,
                baseline_name="one bare insert, mean",
            )
        )

        settings = ComplaintsSettings(
            database_url=url, run_workers=False, common=CommonSettings(env="test", rate_limits_enabled=False)
        )
        # The service runs in this process: set for it what ``csm serve`` sets (shared.process).
        tune_gc(settings.common.gc_young_threshold)
        app = create_app(settings, clock=ManualClock(NOW))
        token = mint_token(settings.common, subject="bench-agent", role=Role.agent)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://complaints"
            ) as client:
                await load(50, options.concurrency, intake(client, token, "warm-up"))
                _, alone = await load(options.requests, 1, intake(client, token, "alone"))
                wall, latencies = await load(
                    options.requests, options.concurrency, intake(client, token, "timed")
                )
                # The edge alone: a request through the same middlewares that does nothing (no token).
                edge_wall, _ = await load(options.requests, options.concurrency, health(client))
        finally:
            await app.state.runtime.db.dispose()
        own_wall, own_latencies = await load(
            options.requests, options.concurrency, intake_in_process(db, "in-process")
        )
        served_wall, served_latencies, served_cpu = await served_intake(url, options, token)
        report.add(
            Figure(
                f"intake throughput, {options.concurrency} at once",
                options.requests / wall,
                "complaints/s",
                baseline=options.requests / bare_wall,
                baseline_name="bare inserts/s",
                goal="≥ 0.3×",
            )
        )
        report.add(
            Figure(
                f"intake served in its own process, client in another, {options.concurrency} at once",
                options.requests / served_wall,
                "complaints/s",
                baseline=options.requests / bare_wall,
                baseline_name="bare inserts/s",
                goal="≥ 0.3×",
            )
        )
        for share in (0.5, 0.99):
            report.add(
                Figure(
                    f"intake served in its own process, p{share * 100:g}, {options.concurrency} at once",
                    percentile(served_latencies, share) * 1000,
                    "ms",
                    baseline=percentile(bare_many, share) * 1000,
                    baseline_name=f"bare insert p{share * 100:g}",
                )
            )
        if served_cpu is not None:
            report.add(
                Figure(
                    "intake served in its own process: server CPU per request",
                    served_cpu / options.requests * 1e6,
                    "µs",
                )
            )
        report.add(
            Figure(
                f"intake without the HTTP edge, {options.concurrency} at once",
                options.requests / own_wall,
                "complaints/s",
                baseline=options.requests / bare_wall,
                baseline_name="bare inserts/s",
            )
        )
        report.add(
            Figure(
                f"intake without the HTTP edge, p50, {options.concurrency} at once",
                percentile(own_latencies, 0.5) * 1000,
                "ms",
                baseline=percentile(bare_many, 0.5) * 1000,
                baseline_name="bare insert p50",
            )
        )
        report.add(
            Figure(
                f"GET /healthz through the same middlewares, {options.concurrency} at once",
                options.requests / edge_wall,
                "requests/s",
                baseline=options.requests / bare_wall,
                baseline_name="bare inserts/s",
            )
        )
        report.add(
            Figure(
                f"intake latency p50, {options.concurrency} at once",
                percentile(latencies, 0.5) * 1000,
                "ms",
                baseline=percentile(bare_many, 0.5) * 1000,
                baseline_name="bare insert p50",
            )
        )
        report.add(
            Figure(
                f"intake latency p99, {options.concurrency} at once",
                percentile(latencies, 0.99) * 1000,
                "ms",
                baseline=percentile(bare_many, 0.99) * 1000,
                baseline_name="bare insert p99",
            )
        )
        report.add(
            Figure(
                "intake latency p50, one at a time",
                percentile(alone, 0.5) * 1000,
                "ms",
                baseline=percentile(bare_one, 0.5) * 1000,
                baseline_name="bare insert p50",
            )
        )
        report.add(
            Figure(
                "intake latency p99, one at a time",
                percentile(alone, 0.99) * 1000,
                "ms",
                baseline=percentile(bare_one, 0.99) * 1000,
                baseline_name="bare insert p99",
            )
        )
    finally:
        await db.dispose()
    return report


def main(argv: list[str]) -> int:
    options = arguments(argv)
    if options.open > options.stored:
        raise SystemExit("--open cannot exceed --stored")
    if options.open < options.ticks * options.batch:
        # Each busy tick warns --batch open complaints that no earlier tick warned.
        raise SystemExit("--open must be at least --ticks × --batch")
    report = asyncio.run(run(options))
    print(report.render())
    print(f"saved {report.save()}")
    return 0
