"""What every service is made of, assembled in one factory.

A service describes itself with a ``ServiceSpec`` (routers, event handlers, background
workers); ``create_service_app`` builds the FastAPI app around it: offline docs, problem
details, metrics, health and readiness, and a lifespan that runs the outbox relay, the
consumer and the workers under supervision. Nothing is built at import time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi_offline import FastAPIOffline

from shared.bus import Bus
from shared.clock import Clock, SystemClock
from shared.cors import CrossOriginMiddleware
from shared.db import Database
from shared.dead_letters import dead_letters_router
from shared.events import TOPICS, dead_letter_topic
from shared.events.asyncapi import asyncapi_document
from shared.inbox import ApplyBatch, ConsumerSettings, EventConsumer, Handlers, Prepare
from shared.limits import BodyLimitMiddleware, SecurityHeadersMiddleware
from shared.observability import Metrics, MetricsMiddleware
from shared.outbox import OutboxRelay, RelaySettings
from shared.outbox_doorbell import listen, ring
from shared.problems import ProblemDetail, ServiceUnavailable, install_problem_handlers
from shared.ratelimit import RateLimitMiddleware
from shared.sealing import KeyStore, Sealer
from shared.settings import ServiceSettings
from shared.tracing import Tracing

log = logging.getLogger("csm.service")

# How long a stopping service waits for its workers and its broker clients.
SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Worker:
    """A long-running task of a service, such as a deadline scanner; restarted if it fails."""

    name: str
    run: Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    """Everything a running service holds; reachable as ``app.state.runtime``."""

    name: str
    settings: ServiceSettings
    clock: Clock
    db: Database
    bus: Bus
    metrics: Metrics
    relay: OutboxRelay
    sealer: Sealer
    tracing: Tracing
    consumer: EventConsumer | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    description: str
    version: str
    routers: Sequence[APIRouter]
    handlers: Callable[[Runtime], Handlers] | None = None
    # Optional: a hook run once per consumed batch before its handlers (see shared.inbox.Prepare).
    prepare: Callable[[Runtime], Prepare] | None = None
    # Optional: a set-based application of a whole batch (see shared.inbox.ApplyBatch).
    apply_batch: Callable[[Runtime], ApplyBatch] | None = None
    workers: Callable[[Runtime], Sequence[Worker]] | None = None
    extra_topics: Sequence[str] = ()
    # Path prefixes of routes that stream a large upload and limit it themselves (see shared.limits).
    streamed_paths: Sequence[str] = ()
    openapi_tags: Sequence[dict[str, Any]] = ()


def create_service_app(
    spec: ServiceSpec, settings: ServiceSettings, *, clock: Clock | None = None
) -> FastAPI:
    runtime = _build_runtime(spec, settings, clock or SystemClock())
    app = FastAPIOffline(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=_lifespan(spec, runtime),
        responses={"4XX": {"model": ProblemDetail, "description": "Problem details (RFC 9457)"}},
        openapi_tags=[
            *spec.openapi_tags,
            {"name": "operations", "description": "Health, readiness, metrics."},
        ],
        swagger_ui_parameters={"persistAuthorization": True},
    )
    app.state.runtime = runtime
    app.state.settings = settings
    install_problem_handlers(app)
    _declare_problems_as_sent(app)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, streamed_paths=spec.streamed_paths
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RateLimitMiddleware, settings=settings.common, service=spec.name)
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    runtime.tracing.instrument(app, runtime.db.engine)
    # Outermost, so that even a refusal (413, 429) reaches an allowed front end readable.
    if settings.common.cors_origins:
        app.add_middleware(CrossOriginMiddleware, origins=settings.common.cors_origins)
    # The service's own routes first: a request is matched against each route in turn, and the
    # service's reads are far more frequent than health checks and scrapes (a few µs per route passed).
    for router in spec.routers:
        app.include_router(router)
    app.include_router(_operations_router(spec, runtime))
    if runtime.consumer is not None:
        app.include_router(dead_letters_router(runtime.consumer))
    _freeze_the_startup_heap()
    return app


_heap_frozen = False


def _freeze_the_startup_heap() -> None:
    """Move what the process has built so far (modules, routes, models: some 170,000 objects) out of the
    garbage collector's sight, once per process, when its first app is assembled.

    A full collection otherwise walks all of them: in a service under load, objects of the requests in
    flight reach the oldest generation and set one off every few thousand requests, a pause of a third
    of a second on this machine that every request in flight waits out (the 360 view's p99). What is
    frozen is what lives as long as the process; what comes later is collected as before.
    """
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()


def _declare_problems_as_sent(app: FastAPI) -> None:
    """Make the OpenAPI document say what errors really are: ``application/problem+json``.

    FastAPI declares error bodies as ``application/json`` and its 422 with its own validation
    schema; the handlers in ``shared.problems`` answer every error as a ProblemDetail.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        problem = {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if code[0] in "45" and "application/json" in content:
                        declared = content.pop("application/json")
                        content["application/problem+json"] = problem if code == "422" else declared
        schemas = document.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas and "HTTPValidationError" not in json.dumps(document["paths"]):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _build_runtime(spec: ServiceSpec, settings: ServiceSettings, clock: Clock) -> Runtime:
    db = Database(
        settings.database_url,
        pool_size=settings.common.database_pool_size,
        max_overflow=settings.common.database_max_overflow,
    )
    bus = Bus(settings.common, client_id=f"csm-{spec.name}")
    metrics = Metrics()
    sealer = Sealer(KeyStore(settings.common.keys_database_url))
    tracing = Tracing(spec.name, settings.common)
    relay = OutboxRelay(
        db=db,
        bus=bus,
        metrics=metrics,
        sealer=sealer,
        tracing=tracing,
        settings=RelaySettings(
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
            retention=timedelta(days=settings.outbox_retention_days),
        ),
    )
    runtime = Runtime(
        name=spec.name,
        settings=settings,
        clock=clock,
        db=db,
        bus=bus,
        metrics=metrics,
        relay=relay,
        sealer=sealer,
        tracing=tracing,
    )
    if spec.handlers is not None:
        runtime.consumer = EventConsumer(
            name=spec.name,
            db=db,
            bus=bus,
            handlers=spec.handlers(runtime),
            metrics=metrics,
            settings=ConsumerSettings(
                batch_size=settings.consumer_batch_size,
                retry_backoff=settings.consumer_retry_backoff,
                session_timeout_ms=settings.common.kafka_session_timeout_ms,
                heartbeat_interval_ms=settings.common.kafka_heartbeat_interval_ms,
                fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            ),
            prepare=spec.prepare(runtime) if spec.prepare is not None else None,
            apply_batch=spec.apply_batch(runtime) if spec.apply_batch is not None else None,
            sealer=sealer,
            tracing=tracing,
        )
    return runtime


def topics_of(spec: ServiceSpec, runtime: Runtime) -> list[str]:
    topics = {TOPICS[spec.name], *spec.extra_topics}
    if runtime.consumer is not None:
        topics |= {*runtime.consumer.topics, dead_letter_topic(spec.name)}
    return sorted(topics)


def _lifespan(spec: ServiceSpec, runtime: Runtime) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = runtime.tasks
        tasks.append(
            asyncio.create_task(runtime.bus.start(topics_of(spec, runtime)), name=f"{spec.name}:bus")
        )
        every = runtime.settings.common.kafka_epoch_check_seconds
        tasks.append(
            asyncio.create_task(
                _supervise(spec.name, Worker("broker-watch", lambda: runtime.bus.watch(every=every))),
                name=f"{spec.name}:broker-watch",
            )
        )
        tasks.extend(
            asyncio.create_task(_supervise(spec.name, worker), name=f"{spec.name}:{worker.name}")
            for worker in _workers_of(spec, runtime)
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # A stop must not hang: what does not end within the grace is named in the log and left.
            if tasks:
                done, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        log.error("%s ended with an error", task.get_name(), exc_info=task.exception())
                for task in stuck:
                    log.error(
                        "%s did not stop within %s s of being cancelled",
                        task.get_name(),
                        SHUTDOWN_GRACE_SECONDS,
                    )
            tasks.clear()
            try:
                async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
                    await runtime.bus.stop()
            except TimeoutError:
                log.error("%s: the bus did not stop within %s s", spec.name, SHUTDOWN_GRACE_SECONDS)
            await runtime.db.dispose()
            await runtime.sealer.store.close()
            # Sends the spans still buffered (a blocking HTTP call: off the event loop).
            await asyncio.to_thread(runtime.tracing.shutdown)

    return lifespan


def _workers_of(spec: ServiceSpec, runtime: Runtime) -> list[Worker]:
    """What this process runs besides the API.

    A service's events may be consumed by several processes of one consumer group (PostgreSQL only;
    ``consumer_processes``). The first runs everything: the relay, the consumer, and the scheduled
    workers (scanners, dispatchers, the batch), which assume they run once. The others
    (``consumer_only``) run the consumer alone. Two relays would also be safe (an advisory lock
    keeps one active), but one process running them all keeps who does what plain. On PostgreSQL the
    relay's process listens for the doorbell that the processes without it ring after committing
    events, so that what they stage goes out at once (``shared.outbox_doorbell``).
    """
    settings = runtime.settings
    postgres = runtime.db.dialect == "postgresql"
    if settings.consumer_only:
        if runtime.consumer is None:
            raise RuntimeError(f"{spec.name} consumes no events: it has no consumer-only process to run")
        return [
            Worker("consumer", runtime.consumer.run),
            Worker("outbox-doorbell", partial(ring, runtime.db)),
        ]
    if not settings.run_workers:
        return [Worker("outbox-doorbell", partial(ring, runtime.db))] if postgres else []
    workers = [Worker("outbox-relay", runtime.relay.run)]
    if postgres:
        workers.append(Worker("outbox-doorbell", partial(listen, runtime.db)))
    if runtime.consumer is not None:
        workers.append(Worker("consumer", runtime.consumer.run))
    if spec.workers is not None:
        workers.extend(spec.workers(runtime))
    return workers


async def _supervise(service: str, worker: Worker) -> None:
    delay = 0.5
    while True:
        try:
            await worker.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: worker %s failed; restarting in %.1fs", service, worker.name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def broker_state(runtime: Runtime) -> str:
    """ok, connecting, unreachable, or recovering (from a new broker log)."""
    bus = runtime.bus
    if not bus.connected:
        return "connecting"
    if not bus.reachable:
        return "unreachable"
    if runtime.settings.consumer_only:
        # The relay runs in another process, which answers for it.
        return "recovering" if runtime.consumer and runtime.consumer.generation != bus.generation else "ok"
    if runtime.settings.run_workers and (
        runtime.relay.recovering
        or runtime.relay.generation != bus.generation
        or (runtime.consumer is not None and runtime.consumer.generation != bus.generation)
    ):
        return "recovering"
    return "ok"


def _operations_router(spec: ServiceSpec, runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the database and the broker answer, and no recovery is under way",
        responses={503: {"model": ProblemDetail}},
    )
    async def readyz() -> dict[str, Any]:
        checks = {"database": "ok", "broker": broker_state(runtime)}
        try:
            await runtime.db.ping()
        except Exception as error:
            checks["database"] = type(error).__name__
        if any(value != "ok" for value in checks.values()):
            raise ServiceUnavailable(
                "Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items()), checks=checks
            )
        return {"status": "ready", "checks": checks}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        body, content_type = runtime.metrics.render()
        return Response(body, media_type=content_type)

    @router.get("/asyncapi.json", summary="The events this service publishes and consumes (AsyncAPI 3)")
    async def asyncapi() -> dict[str, Any]:
        consumed = runtime.consumer.handlers.keys() if runtime.consumer else ()
        return asyncapi_document(
            title=f"{spec.title} events",
            version=spec.version,
            publishes=[TOPICS[spec.name]],
            consumes=sorted(consumed),
            bootstrap=runtime.settings.common.kafka_bootstrap,
            topic_prefix=runtime.settings.common.topic_prefix,
        )

    return router
