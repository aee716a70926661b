"""Per-event re-tiering through the real broker and consumer: throughput, and latency at a steady rate.

``python -m bench segmentation_events [--backlog 50000] [--rates 250,500,1000,2000] [--seconds 20]``

A real tansu broker and the real segmentation service (SQLite, workers on) run in this process,
tuned as ``csm serve`` tunes a service's process (``shared.process``); the latency client runs in
a second process.

- throughput: ``--backlog`` purchase events are produced first, then drained; events re-tiered
  per second from the first applied to the last (each purchase is a new customer, so each one
  moves a tier and is announced: the heaviest case);
- where the CPU went while the backlog drained: the service process (consumer, relay) and the
  broker, per event;
- latency: once the relay has published the backlog's announcements, purchases produced at each
  of ``--rates`` per second for ``--seconds`` from the client process; for each, the time from its
  scheduled moment to reading its ``segment.tier_changed`` back from the broker (producer,
  broker, consumer, re-tiering, commit, outbox relay and broker again on the way);
- the cost of tracing: the backlog drain again (``--tracing-backlog`` purchases, a fresh database
  each time) with tracing off, on with every trace sampled, and on with 1 in 100, the spans going
  over OTLP/HTTP to a receiver in another process;
- the hand-off floor of that latency: the same client and rates against a bare relay in this
  process that consumes each purchase as the service does (aiokafka, the service's fetch wait) and
  at once produces a stand-in for its ``tier_changed`` (acks=all), with no database: what the two
  trips through the broker cost by themselves;
- baseline: the plain Polars RFM over the same purchases, as events per second;
- the floor: the same backlog drained by a bare consumer in this process (aiokafka, msgspec to
  decode each envelope, one inbox row and one upserted aggregate row per event by ``executemany``
  into SQLite, offsets committed per batch): events per second and CPU per event.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import orjson
import polars as pl
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fastapi import FastAPI

from bench.report import Figure, Report, percentile
from services.segmentation.app import create_app
from services.segmentation.settings import SegmentationSettings
from shared import migrations
from shared.broker import EmbeddedBroker, free_port
from shared.events import encode, envelope_for
from shared.events.customer import PurchaseRecorded, SalesChannel
from shared.messaging import inbox_message, outbox_message
from shared.process import tune_gc
from shared.settings import CommonSettings


def purchase(index: int) -> tuple[bytes, bytes, uuid.UUID]:
    customer = uuid.uuid4()
    event = PurchaseRecorded(
        customer_id=customer,
        purchase_id=uuid.uuid4(),
        order_id=f"SO-{index}",
        amount=Decimal(1000 + index % 4000),
        currency="CNY",
        channel=SalesChannel.web,
        purchased_at=datetime.now(UTC),
        item_count=1,
        first_purchase=True,
    )
    envelope = envelope_for(event, source="/bench")
    return str(customer).encode(), encode(envelope), envelope.id


def cpu_seconds(pid: int | None = None) -> float:
    """User and system CPU time of a process (this one by default), from /proc."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plain_polars_rate(count: int) -> float:
    """Events per second of the plain computation: the same RFM over ``count`` purchases at once."""
    frame = pl.DataFrame(
        {
            "customer": list(range(count)),
            "amount": [1000 + i % 4000 for i in range(count)],
            "at": [time.time()] * count,
        }
    )
    started = time.perf_counter()
    (
        frame.group_by("customer")
        .agg(r=pl.col("at").max(), f=pl.len(), m=pl.col("amount").sum())
        .with_columns(mq=(pl.col("m").rank() / pl.len() * 5).ceil())
    )
    return count / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        "segmentation_events",
        {
            "backlog": args.backlog,
            "rates": "/".join(str(rate) for rate in args.rates),
            "seconds": args.seconds,
            "database": "sqlite",
            "batch": args.batch,
        },
    )
    baseline = plain_polars_rate(args.backlog)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'segmentation.db'}"
        await migrations.upgrade("segmentation", url)
        prefix = f"b{uuid.uuid4().hex[:8]}."
        common = CommonSettings(
            env="test",
            rate_limits_enabled=False,  # one client at full speed: the limits are not measured here
            kafka_bootstrap=broker.bootstrap,
            topic_prefix=prefix,
            kafka_session_timeout_ms=6000,
            kafka_heartbeat_interval_ms=1000,
        )
        settings = SegmentationSettings(
            database_url=url,
            common=common,
            consumer_batch_size=args.batch,
            outbox_batch_size=args.batch,
            outbox_poll_seconds=0.05,
        )
        # The service runs in this process: set for it what ``csm serve`` sets for a service's process.
        tune_gc(common.gc_young_threshold)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=2)
        await producer.start()
        try:
            topic = f"{prefix}csm.customer"
            app = create_app(settings)
            db = app.state.runtime.db
            # Throughput: a backlog first, then the service drains it.
            records = [purchase(i) for i in range(args.backlog)]
            async with app.router.lifespan_context(app):
                assert broker.process is not None
                broker_pid = broker.process.pid
                cpu_before: tuple[float, float] = (0.0, 0.0)

                def sent() -> None:
                    nonlocal cpu_before
                    cpu_before = (cpu_seconds(), cpu_seconds(broker_pid))

                rate_drained = await drain(app, producer, topic, records, sent=sent)
                cpu_after = (cpu_seconds(), cpu_seconds(broker_pid))
                report.add(
                    Figure(
                        "purchase events re-tiered per second (backlog)",
                        rate_drained,
                        "events/s",
                        baseline,
                        "plain Polars RFM, events/s",
                        goal=">= 7,500 events/s",
                    )
                )
                # Where the two cores went while the backlog drained (the relay publishes meanwhile).
                service_cpu, broker_cpu = (
                    after - before for after, before in zip(cpu_after, cpu_before, strict=True)
                )
                cpu_per_event = service_cpu / args.backlog * 1e6
                report.add(
                    Figure(
                        "  CPU per event, service process (consumer, relay, producer)", cpu_per_event, "µs"
                    )
                )
                report.add(Figure("  CPU per event, broker", broker_cpu / args.backlog * 1e6, "µs"))
                # The relay may still be publishing the backlog's announcements; latency is measured after.
                drained = time.perf_counter()
                while True:
                    async with db.read() as session:
                        pending = await session.scalar(
                            sa.select(sa.func.count())
                            .select_from(outbox_message)
                            .where(outbox_message.c.published_at.is_(None))
                        )
                    if not pending:
                        break
                    await asyncio.sleep(0.1)
                report.add(
                    Figure(
                        "  announcements still to publish when the backlog was applied, drained in",
                        time.perf_counter() - drained,
                        "s",
                    )
                )

                # The client (producer at a fixed rate, and the reader of announcements) runs in a second
                # process, so that the service has its own core, as it would in production.
                latencies: dict[int, list[float]] = {}
                for rate in args.rates:
                    latencies[rate] = await asyncio.get_running_loop().run_in_executor(
                        None, run_client, broker.bootstrap, prefix, rate, args.seconds
                    )
            floors = await hand_off_floor(broker.bootstrap, args.rates, args.seconds)
            for rate, samples in latencies.items():
                goal = "p99 < 200 ms" if rate == 1000 else None
                for name, share in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
                    report.add(
                        Figure(
                            f"event to tier_changed at {rate:,}/s, {name}",
                            percentile(samples, share) * 1000,
                            "ms",
                            percentile(floors[rate], share) * 1000 if floors[rate] else None,
                            "bare consume-and-produce relay, no database, same client, ms",
                            goal=goal if name == "p99" else None,
                        )
                    )
                report.add(Figure(f"event to tier_changed at {rate:,}/s, max", max(samples) * 1000, "ms"))
                report.add(
                    Figure(
                        f"  latency samples at {rate:,}/s (of {rate * args.seconds:,})",
                        len(samples),
                        "events",
                    )
                )
            floor_rate, floor_cpu = await bare_floor(broker.bootstrap, producer, tmp, args.backlog)
            report.add(
                Figure(
                    "purchase events re-tiered per second, against the floor",
                    rate_drained,
                    "events/s",
                    floor_rate,
                    "bare aiokafka + msgspec + executemany consumer, events/s",
                    goal="within 5x of the floor",
                )
            )
            report.add(
                Figure(
                    "  CPU per event, service process, against the floor",
                    cpu_per_event,
                    "µs",
                    floor_cpu,
                    "bare consumer, µs",
                    goal="<= 100 µs",
                )
            )
            if args.tracing_backlog:
                await tracing_cost(report, broker.bootstrap, producer, tmp, args, baseline)
        finally:
            await producer.stop()
    return report


async def hand_off_floor(bootstrap: str, rates: list[int], seconds: int) -> dict[int, list[float]]:
    """The latency client at each of ``rates`` against a bare relay in this process: each purchase
    consumed (the service's consumer settings) and answered at once on the announcements' topic."""
    prefix = f"h{uuid.uuid4().hex[:8]}."
    inbound, outbound = f"{prefix}csm.customer", f"{prefix}csm.segmentation"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        partitions = CommonSettings().kafka_partitions
        await admin.create_topics([NewTopic(name, partitions, 1) for name in (inbound, outbound)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        inbound,
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}floor",
        enable_auto_commit=False,
        auto_offset_reset="latest",
        max_poll_records=500,
        fetch_max_wait_ms=SegmentationSettings.model_fields["consumer_fetch_max_wait_ms"].default,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()

    async def answer() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            sends = [
                await producer.send(
                    outbound,
                    key=record.key,
                    value=orjson.dumps({"data": {"cause_event_id": orjson.loads(record.value)["id"]}}),
                )
                for records in batches.values()
                for record in records
                if record.value
            ]
            await asyncio.gather(*sends)
            if batches:
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})

    relay = asyncio.create_task(answer())
    try:
        while not consumer.assignment():  # noqa: ASYNC110 (the group's join has no event to wait on)
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        return {
            rate: await loop.run_in_executor(None, run_client, bootstrap, prefix, rate, seconds)
            for rate in rates
        }
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await consumer.stop()
        await producer.stop()


class _FloorPurchase(msgspec.Struct):
    customer_id: uuid.UUID
    amount: Decimal


class _FloorEnvelope(msgspec.Struct):
    id: uuid.UUID
    type: str
    data: _FloorPurchase


async def bare_floor(bootstrap: str, producer: AIOKafkaProducer, tmp: str, count: int) -> tuple[float, float]:
    """The floor: ``count`` purchases drained by a bare consumer; (events/s, µs of CPU per event)."""
    topic = f"f{uuid.uuid4().hex[:8]}.csm.customer"
    connection = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
    connection.executescript(
        """
        PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
        CREATE TABLE inbox (
            consumer TEXT, event_id BLOB, processed_at TEXT, PRIMARY KEY (consumer, event_id)
        );
        CREATE TABLE aggregate (customer_id BLOB PRIMARY KEY, purchases INTEGER, amount TEXT);
        """
    )
    # Created as the service's topics are (csm creates its topics; nothing is created on lookup).
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, CommonSettings().kafka_partitions, 1)])
    finally:
        await admin.close()
    records = [purchase(i) for i in range(count)]
    sends = [await producer.send(topic, key=k, value=v) for k, v, _ in records]
    await asyncio.gather(*sends)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"floor-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    decoder = msgspec.json.Decoder(_FloorEnvelope)
    done = first = 0
    started = cpu_started = 0.0
    try:
        while done < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            if not batches:
                continue
            if not done:
                started, cpu_started = time.perf_counter(), cpu_seconds()
            envelopes = [decoder.decode(r.value) for rs in batches.values() for r in rs if r.value]
            now = datetime.now(UTC).isoformat()
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT INTO inbox VALUES ('floor', ?, ?)", [(e.id.bytes, now) for e in envelopes]
            )
            connection.executemany(
                "INSERT INTO aggregate VALUES (?, 1, ?) ON CONFLICT (customer_id) DO UPDATE"
                " SET purchases = purchases + 1, amount = amount + excluded.amount",
                [(e.data.customer_id.bytes, str(e.data.amount)) for e in envelopes],
            )
            connection.execute("COMMIT")
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
            done += len(envelopes)
            first = first or done
    finally:
        await consumer.stop()
        connection.close()
    # As the service's drain: the rate from the first batch applied to the last (the first batch's
    # events left out); the CPU of all of them, from the first batch's arrival.
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    return (count - first) / max(elapsed, 1e-9), cpu / count * 1e6


async def drain(
    app: FastAPI,
    producer: AIOKafkaProducer,
    topic: str,
    records: list[tuple[bytes, bytes, uuid.UUID]],
    *,
    sent: Callable[[], None] = lambda: None,
) -> float:
    """Produce ``records`` as a backlog, then wait until the service has applied them all: events per
    second from the first applied to the last. ``sent`` is called once the backlog is on the broker."""
    db = app.state.runtime.db
    await app.state.runtime.consumer.assigned.wait()
    sends = [await producer.send(topic, key=k, value=v) for k, v, _ in records]
    await asyncio.gather(*sends)
    sent()
    first = last = None
    while True:
        async with db.read() as session:
            done = await session.scalar(sa.select(sa.func.count()).select_from(inbox_message))
        now = time.perf_counter()
        if done and first is None:
            first = (now, done)
        if done >= len(records):
            last = now
            break
        await asyncio.sleep(0.05)
    assert first is not None and last is not None
    return float((len(records) - first[1]) / max(last - first[0], 1e-9))


async def tracing_cost(
    report: Report,
    bootstrap: str,
    producer: AIOKafkaProducer,
    tmp: str,
    args: argparse.Namespace,
    baseline: float,
) -> None:
    """The same drain with tracing off, on for every trace, and on for 1 in 100, each with its own
    database and topics; the spans go over OTLP/HTTP to a receiver in another process that drops them."""
    receiver = SpanSink()
    try:
        rates: dict[str, float] = {}
        for label, endpoint, ratio in (
            ("off", None, 1.0),
            ("on, 100% sampled", receiver.url, 1.0),
            ("on, 1% sampled", receiver.url, 0.01),
        ):
            url = f"sqlite+aiosqlite:///{Path(tmp) / f'tracing-{len(rates)}.db'}"
            await migrations.upgrade("segmentation", url)
            prefix = f"b{uuid.uuid4().hex[:8]}."
            common = CommonSettings(
                env="test",
                rate_limits_enabled=False,
                kafka_bootstrap=bootstrap,
                topic_prefix=prefix,
                kafka_session_timeout_ms=6000,
                kafka_heartbeat_interval_ms=1000,
                otel_endpoint=endpoint,
                otel_sampling_ratio=ratio,
            )
            settings = SegmentationSettings(
                database_url=url,
                common=common,
                consumer_batch_size=args.batch,
                outbox_batch_size=args.batch,
                outbox_poll_seconds=0.05,
            )
            app = create_app(settings)
            records = [purchase(i) for i in range(args.tracing_backlog)]
            async with app.router.lifespan_context(app):
                rates[label] = await drain(app, producer, f"{prefix}csm.customer", records)
            report.add(
                Figure(
                    f"purchase events re-tiered per second, tracing {label}",
                    rates[label],
                    "events/s",
                    baseline,
                    "plain Polars RFM, events/s",
                )
            )
        for label in ("on, 100% sampled", "on, 1% sampled"):
            report.add(
                Figure(
                    f"  tracing {label}: share of the rate with tracing off",
                    rates[label] / rates["off"] * 100,
                    "%",
                )
            )
    finally:
        receiver.stop()


class SpanSink:
    """An OTLP/HTTP endpoint in a process of its own that answers 200 and keeps nothing."""

    def __init__(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = multiprocessing.get_context("spawn").Process(target=sink, args=(port,), daemon=True)
        self.process.start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


def sink(port: int) -> None:
    class Drop(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    ThreadingHTTPServer(("127.0.0.1", port), Drop).serve_forever()


def run_client(bootstrap: str, prefix: str, rate: int, seconds: int) -> list[float]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(client, (bootstrap, prefix, rate, seconds))


def client(bootstrap: str, prefix: str, rate: int, seconds: int) -> list[float]:
    return asyncio.run(measure_latency(bootstrap, prefix, rate, seconds))


async def measure_latency(bootstrap: str, prefix: str, rate: int, seconds: int) -> list[float]:
    """Purchases at ``rate`` per second; for each, the time until its tier_changed is read back.

    Open loop: each purchase leaves at its scheduled moment whatever happened to earlier ones.
    """
    total = rate * seconds
    records = [purchase(10_000_000 + i) for i in range(total)]  # made before the clock starts
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    consumer = AIOKafkaConsumer(
        f"{prefix}csm.segmentation",
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
    )
    await producer.start()
    await consumer.start()
    await asyncio.sleep(1.0)  # let the consumer settle on the log's end

    async def read() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    cause = orjson.loads(record.value)["data"].get("cause_event_id")
                    if cause:
                        received.setdefault(cause, now)

    reader = asyncio.create_task(read())
    started = time.perf_counter()
    try:
        for i, (key, value, event_id) in enumerate(records):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[str(event_id)] = due
            await producer.send(f"{prefix}csm.customer", key=key, value=value)
        deadline = time.perf_counter() + 60
        # The reader task fills ``received``; polling it costs less than an event per record.
        while len(received.keys() & sent.keys()) < total and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    finally:
        reader.cancel()
        await consumer.stop()
        await producer.stop()
    missing = total - len(received.keys() & sent.keys())
    if missing:
        print(f"{missing} tier changes not seen within a minute")
    return [received[k] - sent[k] for k in sent if k in received]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="segmentation_events")
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument(
        "--rates",
        type=lambda text: [int(rate) for rate in text.split(",")],
        default=[250, 500, 1000, 2000],
        help="comma-separated rates (events/s) at which latency is measured, --seconds each",
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500, help="consumer and relay batch size")
    parser.add_argument(
        "--tracing-backlog",
        type=int,
        default=20_000,
        help="backlog of each of the three tracing runs (0: no tracing runs)",
    )
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    print(report.render())
    print(f"saved {report.save()}")
    return 0
