"""Tracing is off unless a collector is named, and then nothing is instrumented or carried."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from opentelemetry import trace

from shared.db import create_engine
from shared.settings import CommonSettings
from shared.tracing import Tracing, trace_context, traces_url


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
