"""Tracing is off unless a collector is named, and then nothing is instrumented or carried."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from opentelemetry import trace

from shared.db import create_engine
from shared.settings import CommonSettings
from shared.tracing import Tracing, trace_context, traces_url
from tests.otlp import OtlpReceiver
from tests.shared.bus_helpers import purchase


def layers(app: FastAPI) -> list[str]:
    """The classes of the ASGI layers a request passes through, outermost first."""
    names = []
    layer: object = app.build_middleware_stack()
    while layer is not None:
        names.append(type(layer).__name__)
        layer = getattr(layer, "app", None)
    return names


@pytest.mark.parametrize("given", [{}, {"otel_endpoint": ""}])
async def test_tracing_is_off_unless_an_endpoint_is_named_and_then_instruments_nothing(
    given: dict[str, str],
) -> None:
    settings = CommonSettings.model_validate({"env": "test", **given})
    assert settings.otel_endpoint is None
    tracing = Tracing("customer", settings)
    assert not tracing.enabled and isinstance(tracing.tracer, trace.NoOpTracer)
    app = FastAPI()
    engine = create_engine("sqlite+aiosqlite://")
    tracing.instrument(app, engine)
    assert "OpenTelemetryMiddleware" not in layers(app), "no tracing middleware when off"
    with tracing.span("nothing") as span:
        assert span is None
    with tracing.consuming("customer", []) as spans:
        assert spans == {}
    # Outside any trace, nothing is written into a staged event.
    assert trace_context(uuid.uuid4()) == (None, None)
    await engine.dispose()


async def test_on_the_app_and_the_engine_are_instrumented() -> None:
    tracing = Tracing("customer", CommonSettings(env="test", otel_endpoint="http://127.0.0.1:9/"))
    try:
        assert tracing.enabled
        app = FastAPI()
        engine = create_engine("sqlite+aiosqlite://")
        tracing.instrument(app, engine)
        assert "OpenTelemetryMiddleware" in layers(app)
        await engine.dispose()
    finally:
        tracing.shutdown()


def test_the_endpoint_is_a_collector_s_address_and_traces_go_to_its_traces_path() -> None:
    assert traces_url("http://otel-collector:4318") == "http://otel-collector:4318/v1/traces"
    assert traces_url("http://otel-collector:4318/v1/traces") == "http://otel-collector:4318/v1/traces"
    with pytest.raises(ValueError, match="otel_endpoint"):
        CommonSettings(env="test", otel_endpoint="otel-collector:4318")
    with pytest.raises(ValueError, match="otel_sampling_ratio"):
        CommonSettings(env="test", otel_sampling_ratio=1.5)


def test_a_scanner_pass_is_traced_only_if_it_found_work() -> None:
    with OtlpReceiver() as receiver:
        tracing = Tracing("complaints", CommonSettings(env="test", otel_endpoint=receiver.url))
        with tracing.scanning("idle pass"):
            pass
        with tracing.scanning("busy pass") as found:
            found()
            staged_in, _ = trace_context()
        tracing.shutdown()
        [busy] = receiver.received()
    assert busy.name == "busy pass"
    # What the pass stages (a breach, say) belongs to its trace.
    assert staged_in is not None and staged_in.startswith(f"00-{busy.trace_id}-{busy.span_id}-")


def test_what_a_consumer_stages_because_of_an_event_continues_that_event_s_trace() -> None:
    producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    first = purchase(uuid.uuid4()).model_copy(update={"traceparent": producer})
    second = purchase(uuid.uuid4())  # from a system that does not trace: a trace of its own
    with OtlpReceiver() as receiver:
        tracing = Tracing("segmentation", CommonSettings(env="test", otel_endpoint=receiver.url))
        with tracing.consuming("segmentation", [first, second]):
            # Set-based, as segmentation applies a batch: no event's span is the current one.
            because_of_first, _ = trace_context(first.id)
            because_of_second, _ = trace_context(second.id)
        tracing.shutdown()
        spans = {span.attributes["messaging.message.id"]: span for span in receiver.received()}
    one, two = spans[str(first.id)], spans[str(second.id)]
    assert (one.trace_id, one.parent_id) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert two.parent_id is None and two.trace_id != one.trace_id
    assert because_of_first == f"00-{one.trace_id}-{one.span_id}-01"
    assert because_of_second is not None
    assert because_of_second.startswith(f"00-{two.trace_id}-{two.span_id}-")
