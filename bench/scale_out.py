"""Scale-out by partitions: one backlog of purchase events drained on PostgreSQL by 1 consumer process,
then by 2.

``python -m bench scale_out [--backlog 20000] [--processes 2] [--postgres URL]``

Real processes (``csm serve segmentation --consumers N``) on a real tansu broker and PostgreSQL
(``--postgres``, else ``CSM_TEST_POSTGRES``, else the local server), each run with a fresh database
and topics. The same backlog (``bench.segmentation_events.purchase``: each purchase a new customer
that moves a tier and is announced) is produced once the consumer group is stable with all its
members, and the figure is events applied per second from the end of producing to the last applied.
CPU is counted per process (from /proc) from the start of producing until every announcement is
published, so that the relay's work is counted however far it lags; events per CPU-second of all
the processes at work tell a ratio bounded by the cores they got from one bounded by the design.
``--rounds`` alternates the runs (1 process, then more) so that a neighbour's load falls on both.
The runs must leave the same rows (segments, purchases, tier changes, staged announcements); the
benchmark stops if they do not.

The baseline is the one-process run of the same invocation. The machine's cores are shared by the
service processes, the broker and PostgreSQL: the load average and each process's CPU are reported
beside the rates, since with two cores the ratio can be bounded by them rather than by the design.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url

from bench.report import Figure, Report
from bench.segmentation_events import cpu_seconds, purchase
from shared import migrations
from shared.broker import EmbeddedBroker, free_port
from shared.bus import Bus
from shared.db import create_engine
from shared.events import TOPICS
from shared.settings import CommonSettings

GROUP = "csm.segmentation"


@dataclass
class Run:
    """What one drain measured."""

    processes: int
    rate: float
    seconds: float
    # From the start of producing until every announcement was published: the CPU's window.
    wall: float
    applied: int
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    state: str = ""

    @property
    def cores(self) -> float:
        """Cores the service's processes, the broker and the database's backends had, on average."""
        return sum(self.cpu.values()) / self.wall


def machine_cpu() -> tuple[float, float]:
    """Busy and total jiffies of all cores, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return float(sum(fields) - idle), float(sum(fields))


def load_average() -> float:
    with open("/proc/loadavg") as load:
        return float(load.read().split()[0])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0  # ended meanwhile


class Postgres:
    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        url = make_url(self.server).set(drivername="postgresql", database="postgres")
        self.admin = url.render_as_string(hide_password=False)

    async def create(self) -> tuple[str, str]:
        name = f"csm_bench_scale_{uuid.uuid4().hex[:10]}"
        connection = await asyncpg.connect(self.admin)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        url = f"{self.server}/{name}"
        await migrations.upgrade("segmentation", url)
        return name, url

    async def drop(self, name: str) -> None:
        connection = await asyncpg.connect(self.admin)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    async def backends(self, name: str) -> list[int]:
        """The server processes serving database ``name`` now."""
        connection = await asyncpg.connect(self.admin)
        try:
            rows = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
        finally:
            await connection.close()
        return [int(row["pid"]) for row in rows]


async def scalar(url: str, query: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(sa.text(query)) or 0)
    finally:
        await engine.dispose()


async def state_digest(url: str) -> str:
    """A digest of every row the events made, without the moments they were applied at."""
    engine = create_engine(url)
    queries = (
        "SELECT customer_id, frequency, monetary_minor, lifetime_frequency, lifetime_monetary_minor, "
        "first_purchase_at, last_purchase_at, tier, initial_tier, tier_rule, rfm_segment, stage, risk "
        "FROM customer_segment",
        "SELECT purchase_id, customer_id, amount_minor FROM purchase",
        "SELECT customer_id, cause_event_id, changed, previous_tier, tier, stage, risk FROM tier_change",
        "SELECT key, event_type FROM outbox_message",
        "SELECT event_id FROM inbox_message",
    )
    digest = hashlib.sha256()
    try:
        async with engine.connect() as connection:
            for query in queries:
                rows = Counter(tuple(row) for row in (await connection.execute(sa.text(query))).all())
                digest.update(repr(sorted(rows.items(), key=repr)).encode())
    finally:
        await engine.dispose()
    return digest.hexdigest()[:16]


async def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with status {process.returncode}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready on {port} after {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def group_of(bootstrap: str, prefix: str) -> str:
    """The service's consumer group on this broker's log: its name carries the log's epoch
    (``EventConsumer.group_id``), read here as the service reads it."""
    bus = Bus(CommonSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix), client_id="bench-epoch")
    await bus.start()
    try:
        return f"{prefix}{GROUP}.{bus.epoch}"
    finally:
        await bus.stop()


async def wait_group(bootstrap: str, group: str, members: int, timeout: float = 120) -> None:
    """Until the consumer group is stable with ``members`` members (tansu does not describe their
    assignments; a stable group has handed them out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            described = (await admin.describe_consumer_groups([group]))[0]
            # (error, group, state, protocol type, protocol, members)
            state, found = described.groups[0][2], described.groups[0][5]
            if state == "Stable" and len(found) == members:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"group {group}: {state} with {len(found)} members after {timeout:.0f}s")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


def start_service(port: int, processes: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``csm serve segmentation --consumers N``, its output in ``log``."""
    with open(log, "wb") as output:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "services.cli", "serve", "segmentation"),
                *("--port", str(port), "--consumers", str(processes)),
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def drain(
    args: argparse.Namespace,
    processes: int,
    broker: EmbeddedBroker,
    postgres: Postgres,
    records: list[tuple[bytes, bytes, uuid.UUID]],
    tmp: Path,
) -> Run:
    name, url = await postgres.create()
    prefix = f"b{uuid.uuid4().hex[:8]}."
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CSM_")},
        "CSM_ENV": "test",
        "CSM_LOG_FORMAT": "text",
        "CSM_LOG_LEVEL": "WARNING",
        "CSM_RATE_LIMITS_ENABLED": "false",
        "CSM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CSM_TOPIC_PREFIX": prefix,
        "CSM_KAFKA_PARTITIONS": str(args.partitions),
        "CSM_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "CSM_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "CSM_KEYS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / prefix}keys.db",
        "CSM_SEGMENTATION_DATABASE_URL": url,
        "CSM_SEGMENTATION_CONSUMER_BATCH_SIZE": str(args.batch),
        "CSM_SEGMENTATION_OUTBOX_BATCH_SIZE": str(args.batch),
    }
    service = start_service(port, processes, env, tmp / f"{prefix}log")
    try:
        for number in range(processes):
            await wait_ready(port + 100 * number, service)
        await wait_group(broker.bootstrap, await group_of(broker.bootstrap, prefix), processes)
        pids = {"service (API, relay, consumer)": service.pid}
        for number, child in enumerate(children_of(service.pid), start=1):
            pids[f"consumer-only process {number}"] = child
        assert broker.process is not None
        pids["broker"] = broker.process.pid
        backends = await postgres.backends(name)
        # CPU is counted from before the backlog is produced until its announcements are published:
        # all the work the events cause, whenever it falls.
        before = {label: cpu_or_zero(pid) for label, pid in pids.items()}
        backends_before = {pid: cpu_or_zero(pid) for pid in backends}
        machine_before = machine_cpu()
        load_before = load_average()
        began = time.perf_counter()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            sends = [
                await producer.send(prefix + TOPICS["customer"], key=key, value=value)
                for key, value, _ in records
            ]
            await asyncio.gather(*sends)
        finally:
            await producer.stop()
        started = time.perf_counter()
        applied_at_start = await scalar(url, "SELECT count(*) FROM inbox_message")
        while await scalar(url, "SELECT count(*) FROM inbox_message") < len(records):
            if service.poll() is not None:
                raise RuntimeError(f"the service exited with status {service.returncode}")
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        # The announcements are part of the outcome: wait for the relay to have sent them all.
        # Another process writes the rows: there is no event to wait on but the database.
        while await scalar(url, "SELECT count(*) FROM outbox_message WHERE published_at IS NULL"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - began
        machine_after = machine_cpu()
        cpu = {label: cpu_or_zero(pid) - before[label] for label, pid in pids.items()}
        backends_now = set(backends) | set(await postgres.backends(name))
        cpu["PostgreSQL (this database's backends)"] = sum(
            cpu_or_zero(pid) - backends_before.get(pid, 0.0) for pid in backends_now
        )
        busy = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1.0)
        return Run(
            processes=processes,
            rate=(len(records) - applied_at_start) / seconds,
            seconds=seconds,
            wall=wall,
            applied=len(records),
            cpu=cpu,
            machine_busy=busy,
            load=(load_before, load_average()),
            state=await state_digest(url),
        )
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        await postgres.drop(name)


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        "scale_out",
        {
            "backlog": args.backlog,
            "processes": args.processes,
            "partitions": args.partitions,
            "batch": args.batch,
            "rounds": args.rounds,
            "database": "postgresql",
        },
    )
    postgres = Postgres(args.postgres)
    records = [purchase(i) for i in range(args.backlog)]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as directory, EmbeddedBroker() as broker:
        # Alternating, so that a neighbour's load on the shared machine falls on both alike.
        for _ in range(args.rounds):
            for processes in (1, args.processes):
                runs.append(await drain(args, processes, broker, postgres, records, Path(directory)))
    states = {result.state for result in runs}
    if len(states) != 1:
        raise SystemExit(f"the runs left different rows: {[(r.processes, r.state) for r in runs]}")
    for result in runs:
        add_run(report, result)
    one = statistics.median(result.rate for result in runs if result.processes == 1)
    many = statistics.median(result.rate for result in runs if result.processes > 1)
    report.add(
        Figure(
            f"purchase events re-tiered per second, {args.processes} consumer processes (median)",
            many,
            "events/s",
            one,
            "1 process, events/s (median)",
            goal=">= 1.7×",
        )
    )
    efficiency = {
        count: statistics.median(
            r.applied / sum(r.cpu.values()) for r in runs if (r.processes > 1) == (count > 1)
        )
        for count in (1, args.processes)
    }
    report.add(
        Figure(
            f"events per CPU-second of the processes at work (producing to published), "
            f"{args.processes} consumer processes (median)",
            efficiency[args.processes],
            "events/CPU-s",
            efficiency[1],
            "1 process",
            goal="≈ 1× (no cost to scaling out)",
        )
    )
    report.add(Figure(f"same final state in every run ({states.pop()})", 1.0, "yes"))
    return report


def add_run(report: Report, result: Run) -> None:
    label = f"{result.processes} consumer process{'es' if result.processes > 1 else ''}"
    report.add(Figure(f"purchase events re-tiered per second, {label}", result.rate, "events/s"))
    report.add(Figure(f"  {label}: drained in (after producing)", result.seconds, "s"))
    report.add(Figure(f"  {label}: producing to every announcement published", result.wall, "s"))
    for name, seconds in result.cpu.items():
        report.add(Figure(f"  {label}: CPU per event, {name}", seconds / result.applied * 1e6, "µs"))
    report.add(Figure(f"  {label}: cores the processes at work got", result.cores, "cores"))
    report.add(Figure(f"  {label}: machine busy (all processes, all cores)", result.machine_busy * 100, "%"))
    report.add(Figure(f"  {label}: load average at start / end", result.load[0], f"/ {result.load[1]:.2f}"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench scale_out")
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--partitions", type=int, default=CommonSettings.model_fields["kafka_partitions"].default
    )
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs (1 process, then more)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CSM_TEST_POSTGRES") or "postgresql+asyncpg://postgres@127.0.0.1:5432",
        help="a PostgreSQL server URL without a database name",
    )
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    print(report.render())
    print(f"\nsaved: {report.save()}")
    return 0
