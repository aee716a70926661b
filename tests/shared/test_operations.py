"""What every service has: problem details, health, readiness, metrics, offline docs, quiet logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from shared.observability import RedactingFilter, redact
from shared.problems import install_problem_handlers
from tests.harness import Stack, auth, eventually

SERVICES = ("customer", "segmentation", "complaints", "notify")


@pytest.fixture
async def all_services(stack: Stack) -> Stack:
    for name in SERVICES:
        await stack.start(name, run_workers=False)
    return stack


async def test_health_readiness_metrics_and_docs_need_no_token(all_services: Stack) -> None:
    for name in SERVICES:
        client = all_services[name].client
        assert (await client.get("/healthz")).json() == {"status": "ok"}

        async def ready() -> None:
            # Connecting to the broker (and reading its epoch) goes on after start-up: 503 until then.
            answer = await client.get("/readyz")  # noqa: B023 - awaited within this iteration
            assert answer.status_code == 200, answer.text
            assert answer.json()["checks"] == {"database": "ok", "broker": "ok"}

        await eventually(ready, timeout=30)
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "csm_http_requests_total" in metrics.text and "csm_outbox_pending" in metrics.text
        docs = await client.get("/docs")
        assert docs.status_code == 200
        # Swagger UI from this service, not from a CDN: the docs work offline.
        assert "/static-offline-docs/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
        assert (await client.get("/static-offline-docs/swagger-ui-bundle.js")).status_code == 200
        openapi = (await client.get("/openapi.json")).json()
        assert "HTTPBearer" in openapi["components"]["securitySchemes"]
        asyncapi = (await client.get("/asyncapi.json")).json()
        assert asyncapi["asyncapi"] == "3.0.0"


async def test_requests_are_counted_by_route_template(all_services: Stack) -> None:
    client = all_services["customer"].client
    await client.get("/customers/00000000-0000-4000-8000-000000000009", headers=auth())
    metrics = (await client.get("/metrics")).text
    assert 'route="/customers/{customer_id}",status="404"' in metrics
    assert "00000000-0000-4000-8000-000000000009" not in metrics


async def test_an_unknown_route_and_method_are_problems_too(all_services: Stack) -> None:
    client = all_services["customer"].client
    missing = await client.get("/no-such-thing", headers=auth())
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    wrong = await client.delete("/customers", headers=auth())
    assert wrong.status_code == 405 and wrong.json()["title"] == "Method not allowed"


async def test_the_access_log_names_routes_not_paths_or_queries(
    all_services: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="csm.access"):
        await all_services["notify"].client.get(
            "/notifications", params={"customer_id": "00000000-0000-4000-8000-000000000003"}, headers=auth()
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "csm.access"]
    assert lines and lines[-1].startswith("GET /notifications 200")
    assert all("00000000-0000-4000-8000-000000000003" not in line for line in lines)


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("call +86 138 1234 5678 today", "call [phone] today"),
        ("phone 13812345678", "phone [phone]"),
        ("write to li.na@example.com", "write to [email]"),
        ("Authorization: Bearer eyJ0.eyJ1.sig", "Authorization: Bearer [redacted]"),
        ("GET /customers/{customer_id} 200 3.1ms", "GET /customers/{customer_id} 200 3.1ms"),
        ("listening on http://127.0.0.1:8001", "listening on http://127.0.0.1:8001"),
        ("event 12345678-1234-4234-8234-123456789012 at 2026-11-23 10:00:00", None),
    ],
)
def test_personal_data_and_tokens_are_masked_in_logs(text: str, cleaned: str | None) -> None:
    assert redact(text) == (cleaned if cleaned is not None else text)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (text,), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == (cleaned if cleaned is not None else text)


async def test_every_answer_carries_the_security_headers(all_services: Stack) -> None:
    client = all_services["customer"].client
    for response in (
        await client.get("/customers", headers=auth()),
        await client.get("/customers"),  # a 401 problem too
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store", "personal data is never cached"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert response.headers["x-frame-options"] == "DENY"
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    assert "script-src 'self'" in docs.headers["content-security-policy"], "the offline docs still run"
    assert "cache-control" not in docs.headers


async def test_the_api_documents_declare_errors_as_the_problem_json_they_are(all_services: Stack) -> None:
    for name in SERVICES:
        document = (await all_services[name].client.get("/openapi.json")).json()
        declared = [
            (path, code, media_type, body.get("schema", {}).get("$ref"))
            for path, operations in document["paths"].items()
            for operation in operations.values()
            for code, response in operation["responses"].items()
            if code[0] in "45"
            for media_type, body in response.get("content", {}).items()
        ]
        assert declared, name
        assert {media_type for _, _, media_type, _ in declared} == {"application/problem+json"}, name
        assert {ref for *_, ref in declared} == {"#/components/schemas/ProblemDetail"}, name
        assert "HTTPValidationError" not in document["components"]["schemas"], name


async def test_an_unexpected_error_is_a_problem_that_closes_the_connection() -> None:
    """The server drops the connection after an unhandled error; the answer says so beforehand."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://csm") as client:
        answer = await client.get("/boom")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["connection"] == "close"
    assert "a bug" not in answer.text, "the reason is logged, not told"
