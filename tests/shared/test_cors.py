"""Cross-origin requests from front-end apps (CSM_CORS_ORIGINS), on every service's app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from services.registry import SERVICES
from shared.settings import CommonSettings
from tests.harness import common_settings_for_tests, problem

DESK = "https://desk.example.com"
PREFLIGHT = {
    "Origin": DESK,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


@asynccontextmanager
async def service(name: str, directory: Path, origins: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    """The service's app as its factory builds it (CORS is answered before any database is touched)."""
    entry = SERVICES[name]
    common = common_settings_for_tests("127.0.0.1:1", "").model_copy(update={"cors_origins": origins})
    settings = entry.settings(database_url=f"sqlite+aiosqlite:///{directory / name}.db", common=common)
    module = __import__(entry.factory.split(":")[0], fromlist=["create_app"])
    app: FastAPI = module.create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}") as client:
        yield client


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


@pytest.mark.parametrize("name", list(SERVICES))
async def test_a_listed_origin_may_call_every_service_and_others_may_not(name: str, tmp_path: Path) -> None:
    async with service(name, tmp_path, [DESK, "http://localhost:5173"]) as client:
        allowed = await client.options("/anything", headers=PREFLIGHT)
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == DESK
        assert "POST" in allowed.headers["access-control-allow-methods"]
        granted = allowed.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "idempotency-key"} <= set(granted.split(", "))
        # Bearer tokens, not cookies: the browser is never told to send its credentials along.
        assert "access-control-allow-credentials" not in allowed.headers

        refused = await client.options("/anything", headers={**PREFLIGHT, "Origin": "https://evil.example"})
        assert problem(refused, 403) == "cross-origin-refused"
        assert "access-control-allow-origin" not in refused.headers

        odd_header = await client.options(
            "/anything", headers={**PREFLIGHT, "Access-Control-Request-Headers": "x-forwarded-host"}
        )
        assert problem(odd_header, 403) == "cross-origin-refused"

        # The answer itself, even a refusal, is readable by the listed origin and by no other.
        answer = await client.get("/healthz", headers={"Origin": DESK})
        assert answer.headers["access-control-allow-origin"] == DESK
        second = await client.get("/openapi.json", headers={"Origin": "http://localhost:5173"})
        assert second.headers["access-control-allow-origin"] == "http://localhost:5173"
        other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_a_refusal_reaches_the_front_end_readable_with_its_headers(tmp_path: Path) -> None:
    async with service("customer", tmp_path, [DESK]) as client:
        refused = await client.get("/customers", headers={"Origin": DESK})
        assert problem(refused, 401) == "unauthorized"
        assert refused.headers["access-control-allow-origin"] == DESK
        exposed = refused.headers["access-control-expose-headers"].lower()
        assert "www-authenticate" in exposed and "retry-after" in exposed


@pytest.mark.parametrize("name", list(SERVICES))
async def test_no_origin_is_allowed_by_default_and_no_cors_header_is_sent(name: str, tmp_path: Path) -> None:
    async with service(name, tmp_path, CommonSettings(env="test").cors_origins) as client:
        preflight = await client.options("/healthz", headers=PREFLIGHT)
        assert preflight.status_code == 405 and not cors_headers(preflight)
        answer = await client.get("/healthz", headers={"Origin": DESK})
        assert answer.status_code == 200 and not cors_headers(answer)


def test_origins_are_written_as_a_browser_sends_them() -> None:
    written = CommonSettings(env="test", cors_origins=["https://Desk.Example.com/", "http://127.0.0.1:8000"])
    assert written.cors_origins == ["https://desk.example.com", "http://127.0.0.1:8000"]
    for wrong in ("*", "desk.example.com", "https://desk.example.com/app", "ftp://desk.example.com"):
        with pytest.raises(ValidationError, match="not an origin"):
            CommonSettings(env="test", cors_origins=[wrong])
