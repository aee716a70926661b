"""Notify: an announcement matched against many customers and delivered to a local SMTP sink, and
the event-to-send latency of the complaint acknowledgement.

    python -m bench notify_announcement [--customers 100000] [--baseline-messages 20000] ...

Figures, each beside a baseline measured in the same run on the same machine:

- messages per second from ``POST /announcements`` until the sink has every message, against a
  bare aiosmtplib loop sending pre-built messages to the same sink, over one connection and over
  as many connections as the service uses;
- the same until notify has recorded every message as sent;
- complaint acknowledgement latency, from producing ``csm.complaint.opened.v1`` on the broker
  to the e-mail arriving at the sink, against the floor of its parts: a bare broker round trip
  (produce, then consume with a plain consumer) plus one bare SMTP send.

With ``--steps``, the acknowledgement's path is also timed step by step in the service's process:
when the consumer's transaction began and how long it took, the dispatcher's own claim (if it made
one) and the send, each the median over the samples from the moment the event was produced.

The customers (profile with e-mail, the interest, marketing consent) are written straight into
notify's projection tables before the clock starts: what is measured is matching, rendering,
the consent gate, sending, recording and publishing ``notification.sent``, not event intake.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import multiprocessing
import pstats
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from statistics import median
from typing import Any

import aiosmtplib
import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.report import Figure, Report, percentile
from services.notify.app import create_app
from services.notify.channels import WIRE, Email, build_email, message_id
from services.notify.models import Announcement, Consent, Contact, Interest, Notification, PolicyVersion
from services.notify.playbooks import idempotency_key
from services.notify.policy import Policy
from services.notify.settings import NotifySettings
from shared import migrations
from shared.auth import mint_token
from shared.broker import EmbeddedBroker, free_port
from shared.db import create_engine
from shared.events import encode, envelope_for
from shared.events.complaints import ComplaintOpened
from shared.process import tune_gc
from shared.roles import Role
from shared.settings import CommonSettings

SENDER = "service@csm.example.com"
TOPIC = "tea"


# --- the SMTP sink: a separate process, so that it does not share the service's CPU time slice ---


def _sink_main(port: int, count: Any, recording: Any, arrivals: Any, ready: Any) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            if recording.value:
                content = bytes(envelope.content)
                start = content.find(b"Message-ID: ")
                end = content.find(b"\r\n", start)
                arrivals.put((content[start + 12 : end].decode(), time.time()))
            return "250 2.0.0 Ok"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self.count = context.Value("l", 0)
        self.recording = context.Value("b", 0)
        self.arrivals = context.Queue()
        ready = context.Event()
        self.process = context.Process(
            target=_sink_main, args=(self.port, self.count, self.recording, self.arrivals, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")

    @property
    def received(self) -> int:
        return int(self.count.value)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


def _message(n: int) -> Message:
    return build_email(
        Email(
            recipient=f"c{n}@example.com",
            recipient_name="李娜",
            subject="新茶上市",
            body="王芳，您好：\n\n您关注的「tea」有新消息：今年的明前龙井到了。\n\n为您推荐：会员专属折扣与积分。",
            language="zh-CN",
            idempotency_key=f"bench:{n}",
        ),
        sender=SENDER,
        sender_name="客户服务",
        now=datetime.now(UTC),
    )


async def bare_loop(port: int, messages: int, connections: int) -> float:
    """Pre-built messages over ``connections`` SMTP connections, each sending one after another."""
    prepared = [(f"c{n}@example.com", _message(n).as_bytes(policy=WIRE)) for n in range(messages)]
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) for _ in range(connections)]
    for client in clients:
        await client.connect()
    started = time.perf_counter()

    async def send(client: aiosmtplib.SMTP, share: list[tuple[str, bytes]]) -> None:
        for recipient, message in share:
            await client.sendmail(SENDER, [recipient], message)

    await asyncio.gather(*(send(c, prepared[i::connections]) for i, c in enumerate(clients)))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.quit()
    return messages / elapsed


# --- notify, in-process, on a real broker and database ---


async def seed(url: str, customers: int) -> list[uuid.UUID]:
    """Customers with an e-mail address, the topic among their interests, and marketing consent."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(customers)]
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.insert(PolicyVersion),
                [
                    {
                        "version": 1,
                        "document": Policy(quiet_hours=None, marketing_cap=None).model_dump(mode="json"),
                        "created_by": "bench",
                        "created_at": now,
                    }
                ],
            )
            for start in range(0, customers, 5000):
                chunk = ids[start : start + 5000]
                await connection.execute(
                    sa.insert(Contact),
                    [
                        {
                            "customer_id": c,
                            "known": True,
                            "kind": "individual",
                            "name": f"客户{n}",
                            "email": f"c{n}@example.com",
                            "phone": None,
                            "locale": "zh-CN",
                            "time_zone": "Asia/Shanghai",
                            "status": "active",
                            "tier": ("platinum", "gold", "iron", "lead")[n % 4],
                            "key_account": False,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for n, c in enumerate(chunk, start)
                    ],
                )
                await connection.execute(
                    sa.insert(Interest), [{"customer_id": c, "topic": TOPIC} for c in chunk]
                )
                await connection.execute(
                    sa.insert(Consent),
                    [
                        {
                            "customer_id": c,
                            "channel": "email",
                            "purpose": "marketing",
                            "granted": True,
                            "changed_at": now,
                        }
                        for c in chunk
                    ],
                )
    finally:
        await engine.dispose()
    return ids


async def count_sent(url: str, announcement: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int(
                await connection.scalar(
                    sa.select(sa.func.count())
                    .select_from(Notification)
                    .where(
                        Notification.announcement_id == uuid.UUID(announcement), Notification.status == "sent"
                    )
                )
                or 0
            )
    finally:
        await engine.dispose()


async def matching_done(url: str, announcement: str) -> bool:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            state = await connection.scalar(
                sa.select(Announcement.state).where(Announcement.id == uuid.UUID(announcement))
            )
            return state == "matched"
    finally:
        await engine.dispose()


async def analyse(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(sa.text("ANALYZE notification, outbox_message"))
    finally:
        await engine.dispose()


async def broker_round_trip(bootstrap: str, samples: int) -> list[float]:
    topic = f"bench.rtt.{uuid.uuid4().hex[:8]}"
    # The embedded broker does not create topics on first use: create it, as the services do theirs.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")
    await consumer.start()
    await consumer.getone()
    times = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            await producer.send_and_wait(topic, b"x")
            await consumer.getone()
            times.append(time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()
    return times


async def one_smtp_send(port: int, samples: int) -> list[float]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    times = []
    for n in range(samples):
        message = _message(10**7 + n).as_bytes(policy=WIRE)
        started = time.perf_counter()
        await client.sendmail(SENDER, ["floor@example.com"], message)
        times.append(time.perf_counter() - started)
    await client.quit()
    return times


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        "notify_announcement",
        {
            "customers": args.customers,
            "baseline_messages": args.baseline_messages,
            "latency_samples": args.latency_samples,
            "smtp_connections": args.smtp_connections,
            "database": "PostgreSQL" if args.database_url else "SQLite",
        },
    )
    sink = SmtpSink()
    workdir = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    try:
        one = await bare_loop(sink.port, args.baseline_messages, 1)
        many = await bare_loop(sink.port, args.baseline_messages, args.smtp_connections)
        print(
            f"bare SMTP loop: {one:,.0f} msg/s on 1 connection, {many:,.0f} msg/s on {args.smtp_connections}"
        )

        with EmbeddedBroker() as broker:
            url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'notify.db'}"
            await migrations.upgrade("notify", url)
            started = time.perf_counter()
            customers = await seed(url, args.customers)
            print(f"seeded {len(customers):,} customers in {time.perf_counter() - started:.1f}s")
            common = CommonSettings(
                rate_limits_enabled=False,  # one client at full speed: the limits are not measured here
                kafka_bootstrap=broker.bootstrap,
                topic_prefix=f"b{uuid.uuid4().hex[:8]}.",
                kafka_session_timeout_ms=2000,
                kafka_heartbeat_interval_ms=300,
            )
            settings = NotifySettings(
                database_url=url,
                common=common,
                smtp_host="127.0.0.1",
                smtp_port=sink.port,
                smtp_connections=args.smtp_connections,
                mail_from=SENDER,
                scan_poll_seconds=0.2,
            )
            # The service runs in this process: set for it what ``csm serve`` sets (shared.process).
            tune_gc(common.gc_young_threshold)
            app = create_app(settings)
            token = mint_token(common, subject="bench", role=Role.manager)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://notify",
                    headers={"Authorization": f"Bearer {token}"},
                ) as client,
            ):
                await app.state.runtime.bus.wait_started()
                before = sink.received
                profiler = _profiler(args)
                started = time.perf_counter()
                response = await client.post(
                    "/announcements",
                    json={"topic": TOPIC, "title": "新茶上市", "body": "今年的明前龙井到了。"},
                )
                response.raise_for_status()
                analysed = not url.startswith("postgresql")
                while sink.received - before < args.customers:
                    if not analysed and await matching_done(url, response.json()["id"]):
                        # This server runs with autovacuum off; analyse the new rows as its
                        # autovacuum would, or the planner takes 100,000 rows for a few dozen.
                        await analyse(url)
                        analysed = True
                    await asyncio.sleep(0.05)
                delivered = time.perf_counter() - started
                # Polls another process's database over HTTP: there is nothing to wait on here.
                while await count_sent(url, response.json()["id"]) < args.customers:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                recorded = time.perf_counter() - started
                _profile_report(profiler, args, "announcement")
                print(
                    f"announcement: {args.customers:,} delivered in {delivered:.1f}s, recorded in "
                    f"{recorded:.1f}s"
                )
                service_rate = args.customers / delivered
                report.add(
                    Figure("announcement → sink", service_rate, "msg/s", one, "bare SMTP loop, 1 connection")
                )
                report.add(
                    Figure(
                        "announcement → sink",
                        service_rate,
                        "msg/s",
                        many,
                        f"bare SMTP loop, {args.smtp_connections} connections",
                    )
                )
                report.add(
                    Figure(
                        "announcement → recorded as sent",
                        args.customers / recorded,
                        "msg/s",
                        one,
                        "bare SMTP loop, 1 connection",
                    )
                )

                profiler = _profiler(args)
                produced: list[float] = []
                spans: list[tuple[str, float, float]] = []
                with timed_steps(spans) if args.steps else contextlib.nullcontext():
                    latencies = await acknowledgement_latency(
                        broker.bootstrap, common, sink, customers, args, produced
                    )
                _profile_report(profiler, args, "acknowledgement")
                if args.steps:
                    step_figures(report, produced, spans)
            floor_kafka = await broker_round_trip(broker.bootstrap, args.latency_samples)
            floor_smtp = await one_smtp_send(sink.port, args.latency_samples)
        floor = [k + s for k, s in zip(sorted(floor_kafka), sorted(floor_smtp), strict=True)]
        for share, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            report.add(
                Figure(
                    f"complaint acknowledgement, event → sink, {name}",
                    percentile(latencies, share) * 1000,
                    "ms",
                    percentile(floor, share) * 1000,
                    "broker round trip + one SMTP send",
                )
            )
    finally:
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def _profiler(args: argparse.Namespace) -> cProfile.Profile | None:
    if not args.profile:
        return None
    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _profile_report(profiler: cProfile.Profile | None, args: argparse.Namespace, phase: str) -> None:
    """The service's process during one phase (the sink runs in its own): top entries by own time."""
    if profiler is None:
        return
    profiler.disable()
    path = Path(args.profile).with_suffix(f".{phase}.prof")
    profiler.dump_stats(path)
    print(f"--- profile of the {phase} (saved to {path}) ---")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


# The acknowledgement's steps in the service's process: label, class, method, and which calls
# count (the dispatcher's polls that claim nothing do not).
STEPS: tuple[tuple[str, str, str, Callable[[Any], bool]], ...] = (
    ("consumer's transaction", "shared.inbox:EventConsumer", "_apply", bool),
    (
        "dispatcher's own claim",
        "services.notify.dispatch:Dispatcher",
        "_claim",
        lambda due_jobs: due_jobs[0] > 0,
    ),
    ("send", "services.notify.senders:Senders", "send", lambda _: True),
)


@contextlib.contextmanager
def timed_steps(spans: list[tuple[str, float, float]]) -> Iterator[None]:
    """Wrap each step's method so that every call adds (label, start, end) to ``spans``."""
    originals = []
    for label, where, name, counts in STEPS:
        module, owner_name = where.split(":")
        owner = getattr(importlib.import_module(module), owner_name)
        original = getattr(owner, name)

        def timed(original: Any = original, label: str = label, counts: Any = counts) -> Any:
            async def call(*args: Any, **kwargs: Any) -> Any:
                started = time.time()
                result = await original(*args, **kwargs)
                if counts(result):
                    spans.append((label, started, time.time()))
                return result

            return call

        setattr(owner, name, timed())
        originals.append((owner, name, original))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def step_figures(report: Report, produced: list[float], spans: list[tuple[str, float, float]]) -> None:
    """Per step, the median over the samples of when its first call after the event began and how
    long it took, from the moment the event was produced (a step a sample did not take is left out)."""
    ends = [*produced[1:], float("inf")]
    ordered = sorted(spans, key=lambda span: span[1])
    for label, *_ in STEPS:
        began, took, samples = [], [], 0
        for start, end in zip(produced, ends, strict=True):
            first = next((s for s in ordered if s[0] == label and start <= s[1] < end), None)
            if first is not None:
                samples += 1
                began.append((first[1] - start) * 1000)
                took.append((first[2] - first[1]) * 1000)
        if samples:
            report.add(Figure(f"acknowledgement step: {label} begins", median(began), "ms"))
            report.add(Figure(f"acknowledgement step: {label} takes ({samples} samples)", median(took), "ms"))


async def acknowledgement_latency(
    bootstrap: str,
    common: CommonSettings,
    sink: SmtpSink,
    customers: list[uuid.UUID],
    args: argparse.Namespace,
    produced: list[float] | None = None,
) -> list[float]:
    """One complaint at a time: produce the event, wait for its acknowledgement at the sink.

    ``produced`` gets the moment each measured sample was produced."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    sink.recording.value = 1
    latencies: list[float] = []
    try:
        for n in range(args.latency_samples + 5):
            customer = customers[n]
            now = datetime.now(UTC)
            event = ComplaintOpened(
                customer_id=customer,
                complaint_id=uuid.uuid4(),
                channel="web",
                category="delivery",
                severity="normal",
                first_owner="agent-1",
                tier="gold",
                opened_at=now,
                first_response_due_at=now + timedelta(hours=2),
            )
            envelope = envelope_for(event, source="/bench")
            expected = message_id(
                idempotency_key(str(envelope.id), "complaint_acknowledgement", "acknowledge"), SENDER
            )
            started = time.time()
            await producer.send_and_wait(
                common.topic_prefix + event.topic, encode(envelope), key=str(customer).encode()
            )
            while True:
                found, arrived = await asyncio.to_thread(sink.arrivals.get, True, 30)
                if found == expected:
                    break
            if n >= 5:  # the first few warm the consumer group and the connections
                latencies.append(arrived - started)
                if produced is not None:
                    produced.append(started)
    finally:
        sink.recording.value = 0
        await producer.stop()
    return latencies


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench notify_announcement", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--customers", type=int, default=100_000, help="customers matched (the issue's figure)"
    )
    parser.add_argument(
        "--baseline-messages", type=int, default=20_000, help="messages in each bare SMTP loop"
    )
    parser.add_argument("--latency-samples", type=int, default=200, help="complaints sent one at a time")
    parser.add_argument("--smtp-connections", type=int, default=4, help="SMTP connections notify keeps open")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database to use instead of SQLite")
    parser.add_argument(
        "--profile",
        default=None,
        metavar="PATH",
        help="profile the service's process (cProfile) during each phase; writes PATH.<phase>.prof",
    )
    parser.add_argument(
        "--steps", action="store_true", help="also time the acknowledgement's steps in the service"
    )
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    print(report.render())
    print(f"saved to {report.save()}")
    return 0
