"""Tracing: one trace from the request that changed something, through the outbox and the broker, to
every effect it had in the other services (OpenTelemetry).

Off unless ``CSM_OTEL_ENDPOINT`` names an OTLP/HTTP collector, and off costs nothing that grows with
the work: the tracer is a no-op, nothing is instrumented, and no trace context is read from or
written into events. On, each service has a tracer provider of its own (several services may share
one process, as in the tests), sampling at ``CSM_OTEL_SAMPLING_RATIO`` where a trace starts and
following the caller's decision everywhere else.

The trace context travels inside each event as the CloudEvents distributed-tracing extension
(``traceparent``, ``tracestate``): it is written when the event is staged, in the transaction that
made it true, so it survives the outbox, a relay restart and a replay. A consumer's span continues
the trace of the event it applies; what it stages in turn carries that span on.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.events.base import Envelope
    from shared.settings import CommonSettings

_PROPAGATOR = TraceContextTextMapPropagator()

# The spans of the events a consumer batch is applying, by event id: what a handler stages
# because of one of them (``cause=``) continues that event's trace, even when the batch is applied
# set-based and no single event's span is the current one.
_CAUSES: ContextVar[Mapping[uuid.UUID, Span] | None] = ContextVar("csm_trace_causes", default=None)


def traces_url(endpoint: str) -> str:
    """Where an OTLP/HTTP collector at ``endpoint`` takes traces."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


class Tracing:
    """A service's tracer: recording and exporting when an endpoint is set, a no-op otherwise."""

    def __init__(self, service: str, settings: CommonSettings) -> None:
        self.provider: TracerProvider | None = None
        self.tracer: Tracer = trace.NoOpTracer()
        if settings.otel_endpoint is None:
            return
        # Imported only when on: the SDK and the exporter are not loaded by a service that does not trace.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service, "service.namespace": "csm"}),
            sampler=ParentBased(TraceIdRatioBased(settings.otel_sampling_ratio)),
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(settings.otel_endpoint)))
        )
        self.tracer = self.provider.get_tracer("csm")

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def instrument(self, app: FastAPI, engine: AsyncEngine) -> None:
        """Spans for every HTTP request and every SQL statement of the service, when tracing is on."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeter

        # Operations endpoints are polled all the time and tell nothing about a customer's event.
        # The ASGI layer's own "http receive" and "http send" spans say nothing the request's does not.
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            excluded_urls="healthz,readyz,metrics",
            exclude_spans=["receive", "send"],
            server_request_hook=_without_query,
        )
        # The engine's own tracer rather than SQLAlchemyInstrumentor, which instruments once per process
        # (several services share one in tests) and wraps every create_engine besides. Its declared
        # SQLAlchemy < 2.1 is for want of a release saying otherwise: the engine events it hooks are
        # the same in 2.1, and tests/e2e/test_tracing.py checks that its spans arrive.
        EngineTracer(  # type: ignore[no-untyped-call]  # the instrumentation's classes are not annotated
            _TracerWithinTraces(self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")),
            engine.sync_engine,
            NoOpMeter("csm").create_up_down_counter("db.client.connections.usage"),
        )

    def shutdown(self) -> None:
        """Send what is buffered and stop exporting."""
        if self.provider is not None:
            self.provider.shutdown()

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        parent: Context | None = None,
        attributes: Mapping[str, str | int] | None = None,
    ) -> Iterator[Span | None]:
        """A current span (None when tracing is off); an error that leaves it marks it failed."""
        if self.provider is None:
            yield None
            return
        with self.tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=attributes
        ) as span:
            yield span

    @contextlib.contextmanager
    def scanning(self, name: str) -> Iterator[Callable[[], None]]:
        """A span for one pass of a scanner, current while it runs, sent only if the pass calls the
        ``found`` it is given (or fails): an idle pass every few seconds would be a trace telling
        nothing. What the pass stages starts from this span (a breach's alert is in its trace)."""
        if self.provider is None:
            yield _nothing
            return
        span = self.tracer.start_span(name)
        kept = False

        def found() -> None:
            nonlocal kept
            kept = True

        with trace.use_span(span, end_on_exit=False):
            try:
                yield found
            except Exception as error:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                kept = True
                raise
            finally:
                # A span never ended is never exported: the idle pass leaves nothing behind.
                if kept:
                    span.end()

    @contextlib.contextmanager
    def consuming(self, consumer: str, envelopes: Sequence[Envelope[Any]]) -> Iterator[dict[uuid.UUID, Span]]:
        """One ``process`` span per event, each continuing its producer's trace, open while the batch
        applies; what the batch stages with one of them as its cause carries that event's span on."""
        if self.provider is None or not envelopes:
            yield {}
            return
        spans: dict[uuid.UUID, Span] = {}
        for envelope in envelopes:
            spans[envelope.id] = self.tracer.start_span(
                f"process {envelope.type}",
                context=context_of(envelope),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.consumer.group.name": consumer,
                    "messaging.destination.name": envelope.data.topic,
                    "messaging.message.id": str(envelope.id),
                    "cloudevents.event_type": envelope.type,
                },
            )
        token = _CAUSES.set(spans)
        try:
            yield spans
        except BaseException as error:
            for span in spans.values():
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise
        finally:
            _CAUSES.reset(token)
            for span in spans.values():
                span.end()


# Attributes of a request's span that hold its query string (a search by name, phone or e-mail).
_WITH_QUERY = ("http.url", "http.target", "url.full")


def _without_query(span: Span, _scope: Mapping[str, Any]) -> None:
    """Traces leave the process: a request's span keeps its path, never its query."""
    attributes = getattr(span, "attributes", None) or {}
    for name in _WITH_QUERY:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "")


def _nothing() -> None:
    return None


def context_of(envelope: Envelope[Any]) -> Context | None:
    """The trace an event belongs to, from its ``traceparent`` and ``tracestate``; None if it has none."""
    if envelope.traceparent is None:
        return None
    carrier = {"traceparent": envelope.traceparent}
    if envelope.tracestate:
        carrier["tracestate"] = envelope.tracestate
    return _PROPAGATOR.extract(carrier)


def parent_of(traceparent: str | None) -> Context | None:
    """The trace a stored ``traceparent`` names (a message staged to send later, say)."""
    return None if traceparent is None else _PROPAGATOR.extract({"traceparent": traceparent})


def trace_context(cause: uuid.UUID | None = None) -> tuple[str | None, str | None]:
    """``traceparent`` and ``tracestate`` for an event staged now: the span of its cause if a consumer
    is applying that cause, else the current span; (None, None) outside any trace (tracing off)."""
    causes = _CAUSES.get()
    span = causes.get(cause) if causes is not None and cause is not None else None
    if span is None:
        span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        return None, None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent"), carrier.get("tracestate")


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids in hex (as trace viewers show them), if a span is current."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class _TracerWithinTraces(Tracer):
    """A tracer whose spans are made only inside a trace: a statement of a relay's or a scanner's idle
    poll would otherwise be a trace of its own, once a second, telling nothing."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def start_span(self, name: str, context: Context | None = None, *args: Any, **kwargs: Any) -> Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self.tracer.start_span(name, context, *args, **kwargs)

    @contextlib.contextmanager
    def start_as_current_span(  # type: ignore[override]  # the base's signature, passed through
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[Span]:
        if not trace.get_current_span(context).get_span_context().is_valid:
            yield trace.INVALID_SPAN
            return
        with self.tracer.start_as_current_span(name, context, *args, **kwargs) as span:
            yield span
