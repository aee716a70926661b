"""Several consumer processes of one service on PostgreSQL: ``csm serve --consumers`` and consumer-only
processes that join and leave the group while events flow, each event applied exactly once.

The processes are real (``python -m services.cli serve``), on the real broker; the outcome of the
scaled run is compared with one process's over the same events, row for row.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from services.registry import SERVICES
from shared.broker import EmbeddedBroker, free_port
from shared.db import create_engine
from shared.events import TOPICS, encode, envelope_for
from shared.events.customer import PurchaseRecorded, SalesChannel
from shared.settings import CommonSettings
from tests.e2e.system import System, count
from tests.harness import Databases, auth, eventually, postgres_from_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        postgres_from_env() is None,
        reason="several consumer processes need PostgreSQL (set CSM_TEST_POSTGRES): SQLite has one writer",
    ),
]

CUSTOMERS = 200
PURCHASES_EACH = 5


def purchases() -> list[tuple[bytes, bytes]]:
    """Each customer's purchases in order, as records keyed by customer (the same in every run)."""
    start = datetime.now(UTC) - timedelta(days=30)
    records = []
    for number in range(CUSTOMERS):
        customer = uuid.UUID(int=number + 1)
        for each in range(PURCHASES_EACH):
            event = PurchaseRecorded(
                customer_id=customer,
                purchase_id=uuid.uuid4(),
                order_id=f"SO-{number}-{each}",
                amount=Decimal(200 + 1500 * (number % 7) * each),
                currency="CNY",
                channel=SalesChannel.web,
                purchased_at=start + timedelta(days=each),
                item_count=1,
                first_purchase=each == 0,
            )
            records.append((str(customer).encode(), encode(envelope_for(event, source="/test"))))
    return records


class Segmentation:
    """Processes of the segmentation service on one database and topic prefix."""

    def __init__(self, tmp: Path, bootstrap: str, url: str) -> None:
        self.tmp = tmp
        self.prefix = f"t{uuid.uuid4().hex[:10]}."
        self.url = url
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CSM_")},
            "CSM_ENV": "test",
            "CSM_LOG_FORMAT": "text",
            "CSM_RATE_LIMITS_ENABLED": "false",
            "CSM_KAFKA_BOOTSTRAP": bootstrap,
            "CSM_TOPIC_PREFIX": self.prefix,
            "CSM_KEYS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / self.prefix}keys.db",
            "CSM_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "CSM_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            "CSM_SEGMENTATION_DATABASE_URL": url,
            # Small batches: many commits, so that a process dies between some of them.
            "CSM_SEGMENTATION_CONSUMER_BATCH_SIZE": "20",
            # The relay wakes only when rung: what a consumer-only process stages must ring it.
            "CSM_SEGMENTATION_OUTBOX_POLL_SECONDS": "3600",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *arguments: str, port: int) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{self.prefix}{port}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "segmentation", "--port", str(port), *arguments],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted(self.tmp.glob(f"{self.prefix}*.log"))
        )

    async def produce(self, records: list[tuple[bytes, bytes]]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.env["CSM_KAFKA_BOOTSTRAP"], acks="all")
        await producer.start()
        try:
            sends = [
                await producer.send(self.prefix + TOPICS["customer"], key=key, value=value)
                for key, value in records
            ]
            await asyncio.gather(*sends)
        finally:
            await producer.stop()


async def ready(port: int, process: subprocess.Popen[bytes], logs: Segmentation) -> None:
    async def answers() -> None:
        assert process.poll() is None, logs.logs()
        async with httpx.AsyncClient(timeout=2) as client:
            try:
                response = await client.get(f"http://127.0.0.1:{port}/readyz")
            except httpx.HTTPError as error:
                raise AssertionError(str(error)) from None
        assert response.status_code == 200, response.text

    await eventually(answers, timeout=90, interval=0.2)


async def consumed(port: int) -> float:
    """Events the process at ``port`` applied, from its metrics."""
    async with httpx.AsyncClient(timeout=2) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("csm_events_consumed_total{")
    )


async def all_applied_and_published(url: str, total: int, service: Segmentation) -> None:
    async def done() -> None:
        assert await count(url, "SELECT count(*) FROM inbox_message") == total, service.logs()
        assert await count(url, "SELECT count(*) FROM outbox_message WHERE published_at IS NULL") == 0

    await eventually(done, timeout=120, interval=0.5)


async def outcome(url: str) -> dict[str, object]:
    """What the events left: every row they make, without the moments of applying them."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            async def rows(query: str) -> list[tuple[object, ...]]:
                return sorted(tuple(row) for row in (await connection.execute(sa.text(query))).all())

            return {
                "segments": await rows(
                    "SELECT customer_id, frequency, monetary_minor, lifetime_frequency, "
                    "lifetime_monetary_minor, purchase_days, first_purchase_at, last_purchase_at, tier, "
                    "initial_tier, tier_rule, rfm_segment, stage, risk FROM customer_segment"
                ),
                "purchases": await rows("SELECT purchase_id, customer_id, amount_minor FROM purchase"),
                "changes": await rows(
                    "SELECT customer_id, cause_event_id, changed, previous_tier, tier, previous_stage, "
                    "stage, previous_risk, risk, reason FROM tier_change"
                ),
                "events": Counter(await rows("SELECT key, event_type FROM outbox_message")),
                "inbox": await count(url, "SELECT count(*) FROM inbox_message"),
            }
    finally:
        await engine.dispose()


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[Databases]:
    databases = Databases(tmp_path, postgres_from_env())
    await databases.check()
    try:
        yield databases
    finally:
        await databases.drop_all()


async def test_consumer_processes_join_and_leave_and_every_event_is_applied_once(
    tmp_path: Path, postgres: Databases, own_broker: EmbeddedBroker
) -> None:
    """Two processes share the group; one is killed mid-way and a third joins: the result is one
    process's, row for row (no event lost, none applied twice), and the announcements the
    consumer-only processes staged are published although the relay never polls."""
    records = purchases()
    half = len(records) // 2

    reference = Segmentation(tmp_path, own_broker.bootstrap, await postgres.create("segmentation"))
    try:
        port = free_port()
        await ready(port, reference.start(port=port), reference)
        await reference.produce(records)
        await all_applied_and_published(reference.url, len(records), reference)
    finally:
        reference.stop()

    scaled = Segmentation(tmp_path, own_broker.bootstrap, await postgres.create("segmentation"))
    try:
        first, second, third = free_port(), free_port(), free_port()
        await ready(first, scaled.start(port=first), scaled)
        doomed = scaled.start("--consumer-only", port=second)
        await ready(second, doomed, scaled)
        await scaled.produce(records[:half])

        async def both_working() -> None:
            assert await consumed(second) > 0 and await consumed(first) > 0
            assert await count(scaled.url, "SELECT count(*) FROM inbox_message") >= half // 3

        await eventually(both_working, timeout=90, interval=0.05)
        doomed.send_signal(signal.SIGKILL)  # mid-batch, offsets of what it applied perhaps not committed
        doomed.wait()
        await ready(third, scaled.start("--consumer-only", port=third), scaled)
        await scaled.produce(records[half:])
        await all_applied_and_published(scaled.url, len(records), scaled)
        assert await consumed(third) > 0, "the process that joined took no partition"
    finally:
        scaled.stop()

    expected, got = await outcome(reference.url), await outcome(scaled.url)
    assert got["inbox"] == len(records)
    for name in expected:
        assert got[name] == expected[name], name


async def test_serve_with_two_consumers_starts_a_consumer_only_process_and_stops_if_it_dies(
    tmp_path: Path, postgres: Databases, own_broker: EmbeddedBroker
) -> None:
    """``csm serve --consumers 2``: a second process answers on port + 100 and consumes; when it dies,
    the service stops with an error rather than run on with fewer consumers than asked."""
    service = Segmentation(tmp_path, own_broker.bootstrap, await postgres.create("segmentation"))
    try:
        port = free_port()
        main = service.start("--consumers", "2", port=port)
        await ready(port, main, service)
        await ready(port + 100, main, service)
        admin = AIOKafkaAdminClient(bootstrap_servers=own_broker.bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics([service.prefix + TOPICS["customer"]])
        finally:
            await admin.close()
        # The default partition count lets the processes share a topic evenly.
        assert len(described[0]["partitions"]) == CommonSettings.model_fields["kafka_partitions"].default
        await service.produce(purchases()[:100])

        async def the_second_consumes() -> None:
            assert await consumed(port + 100) > 0

        await eventually(the_second_consumes, timeout=60, interval=0.2)
        children = _children(main.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        assert main.wait(60) == 1, service.logs()
    finally:
        service.stop()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
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


class ScaledSystem(System):
    """``csm up --consumers 2``."""

    def start(self) -> None:
        self.starts += 1
        log = open(self.tmp / f"up-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "services.cli", "up", "--consumers", "2"),
                *("--kafka-port", str(self.kafka_port), "--var-dir", str(self.tmp / "var")),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def test_up_with_two_consumers_runs_two_consumer_processes_per_service(
    tmp_path: Path, postgres: Databases
) -> None:
    """Every service gets a consumer-only process beside it; purchases flow through them all."""
    urls = {name: await postgres.create(name, migrate=False) for name in SERVICES}
    system = ScaledSystem(tmp_path, urls)
    system.start()
    try:
        await system.wait_ready()
        for port in system.ports.values():
            await _ready_or_log(port + 100, system)

        async def the_banner_names_them() -> None:
            # Printed once `csm up` has seen every process ready itself, a moment after we did.
            banner = (tmp_path / f"up-{system.starts}.log").read_text(errors="replace")
            assert "segmentation: 2 consumer processes" in banner

        await eventually(the_banner_names_them, timeout=60)
        async with httpx.AsyncClient(timeout=10, headers=auth()) as client:
            for number in range(20):
                created = await client.post(
                    f"{system.url('customer')}/customers", json={"name": f"C {number}"}
                )
                assert created.status_code == 201, created.text
                for each in range(3):
                    bought = await client.post(
                        f"{system.url('customer')}/customers/{created.json()['id']}/purchases",
                        json={"order_id": f"SO-{number}-{each}", "amount": "100.00", "currency": "CNY"},
                    )
                    assert bought.status_code == 201, bought.text

        async def segmented() -> None:
            assert await count(urls["segmentation"], "SELECT count(*) FROM purchase") == 60
            for name in SERVICES:
                pending = "SELECT count(*) FROM outbox_message WHERE published_at IS NULL"
                assert await count(urls[name], pending) == 0, name

        await eventually(segmented, timeout=120, interval=0.5)
        # Twenty customers over twelve partitions: the second process had some of them.
        assert await consumed(system.ports["segmentation"] + 100) > 0
    finally:
        system.stop()
    assert system.process is not None and system.process.returncode == 0, system.log_tail()


async def _ready_or_log(port: int, system: System) -> None:
    async def answers() -> None:
        assert system.process is not None and system.process.poll() is None, system.log_tail()
        async with httpx.AsyncClient(timeout=2) as client:
            try:
                response = await client.get(f"http://127.0.0.1:{port}/readyz")
            except httpx.HTTPError as error:
                raise AssertionError(str(error)) from None
        assert response.status_code == 200, response.text

    await eventually(answers, timeout=60, interval=0.2)
