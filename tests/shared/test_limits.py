"""One request cannot cost a service more than its body limit allows (413, at once, nothing parsed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import uvicorn

from shared.broker import free_port
from shared.roles import Role
from tests.harness import Stack, auth, eventually, problem


@pytest.fixture
async def customer_url(stack: Stack) -> AsyncIterator[str]:
    """The customer service over real HTTP, so that a large body really travels."""
    service = await stack.start("customer", run_workers=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    async with httpx.AsyncClient() as probe:
        await eventually(lambda: _answers(probe, f"http://127.0.0.1:{port}/healthz"))
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


async def _answers(client: httpx.AsyncClient, url: str) -> None:
    try:
        await client.get(url)
    except httpx.TransportError as error:
        raise AssertionError("not listening yet") from error


def twenty_megabytes_of_keys() -> bytes:
    return orjson.dumps({f"k{i}": i for i in range(1_500_000)})


async def test_a_huge_body_is_refused_at_once_while_the_service_goes_on_answering(customer_url: str) -> None:
    body = twenty_megabytes_of_keys()
    assert len(body) > 20_000_000
    async with httpx.AsyncClient(base_url=customer_url, timeout=30) as client:
        huge = asyncio.create_task(
            client.post("/customers", content=body, headers={**auth(), "content-type": "application/json"})
        )
        health = await client.get("/healthz")
        refused = await huge
    assert health.status_code == 200
    assert problem(refused, 413) == "body-too-large"
    assert refused.json()["limit"] == 1_000_000
    assert len(refused.content) < 1_000, "the answer is short, not a list of a million errors"


async def test_a_body_without_a_declared_length_is_counted_as_it_arrives(customer_url: str) -> None:
    chunk = b" " * 65_536

    async def endless_whitespace() -> AsyncIterator[bytes]:
        for _ in range(100):  # 6.5 MB, sent chunked
            yield chunk

    async with httpx.AsyncClient(base_url=customer_url, timeout=30) as client:
        refused = await client.post(
            "/customers", content=endless_whitespace(), headers={**auth(), "content-type": "application/json"}
        )
    assert problem(refused, 413) == "body-too-large"


async def test_a_body_within_the_limit_and_a_large_streamed_import_go_through(customer_url: str) -> None:
    async with httpx.AsyncClient(base_url=customer_url, timeout=30) as client:
        created = await client.post("/customers", json={"name": "Within Limits"}, headers=auth())
        assert created.status_code == 201, created.text
        rows = "".join(f"IMP-{i},Customer {i},c{i}@example.com\n" for i in range(50_000))
        csv = ("external_id,name,email\n" + rows).encode()
        assert len(csv) > 1_500_000
        started = await client.post(
            "/imports/customers",
            content=csv,
            headers={**auth(Role.manager), "content-type": "text/csv"},
        )
    assert started.status_code == 202, started.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Li\u0000Na"}, "name"),
        ({"name": "Li Na", "notes": "\u001b[2J\u001b[31mpay now"}, "notes"),
        ({"name": "Li Na", "tags": ["ok", "bad\u0007"]}, "tags.1"),
        ({"name": "Li Na", "notes": "a" + "\u0085"}, "notes"),
    ],
)
async def test_nul_and_control_characters_are_refused_naming_the_field(
    customer_url: str, body: dict[str, object], field: str
) -> None:
    async with httpx.AsyncClient(base_url=customer_url, timeout=30) as client:
        refused = await client.post("/customers", json=body, headers=auth())
    assert problem(refused, 422) == "validation-error"
    assert refused.json()["errors"][0]["field"] == field


async def test_tabs_and_line_breaks_are_text_and_deep_nesting_is_refused(customer_url: str) -> None:
    async with httpx.AsyncClient(base_url=customer_url, timeout=30) as client:
        fine = await client.post(
            "/customers", json={"name": "Li Na", "notes": "line one\n\tline two\r\n"}, headers=auth()
        )
        assert fine.status_code == 201, fine.text
        deep: object = "x"
        for _ in range(40):
            deep = [deep]
        refused = await client.post("/customers", json={"name": "Li Na", "tags": deep}, headers=auth())
    assert problem(refused, 422) == "validation-error"
    assert "deeper than 32" in refused.json()["errors"][0]["message"]


async def test_a_version_number_beyond_what_the_database_holds_is_a_422(stack: Stack) -> None:
    segmentation = await stack.start("segmentation", run_workers=False)
    answer = await segmentation.client.get(f"/policy/versions/{2**70}", headers=auth())
    assert problem(answer, 422) == "validation-error"


async def test_year_one_and_year_9999_are_refused_not_a_500(stack: Stack) -> None:
    segmentation = await stack.start("segmentation", run_workers=False)
    complaints = await stack.start("complaints", run_workers=False)
    lead = auth(Role.supervisor)
    retention = await segmentation.client.get(
        "/analytics/retention", params={"start": "2026-01-01", "end": "9999-12-31"}, headers=lead
    )
    assert problem(retention, 422) == "validation-error"
    assert retention.json()["errors"][0]["field"] == "end"
    report = await complaints.client.get(
        "/complaints-analytics",
        params={"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"},
        headers=lead,
    )
    assert problem(report, 422) == "validation-error"
    assert {e["field"] for e in report.json()["errors"]} == {"since", "until"}
