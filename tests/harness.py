"""Running the real services in tests: a real broker, real databases, isolated topics per test."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.engine import make_url
from starlette.routing import BaseRoute

from services.registry import SERVICES
from shared import migrations
from shared.auth import ACCESS, mint_token
from shared.clock import Clock
from shared.roles import Role
from shared.sealing import KeyStore, Sealer
from shared.service import Runtime
from shared.settings import CommonSettings

# Set by .ci/run: a PostgreSQL server URL without a database name.
POSTGRES_ENV = "CSM_TEST_POSTGRES"

T = TypeVar("T")


class Databases:
    """Fresh, migrated databases: SQLite files, or PostgreSQL databases when CSM_TEST_POSTGRES is set."""

    def __init__(self, directory: Path, postgres: str | None) -> None:
        self.directory = directory
        self.postgres = postgres
        self.created: list[str] = []

    @property
    def kind(self) -> str:
        return "postgresql" if self.postgres else "sqlite"

    async def check(self) -> None:
        """Fail loudly, rather than fall back to SQLite, if the PostgreSQL server is not there."""
        if self.postgres:
            connection = await asyncpg.connect(self._admin_dsn(), timeout=10)
            await connection.close()

    async def create(self, service: str, *, migrate: bool = True) -> str:
        name = f"csm_test_{service}_{uuid.uuid4().hex[:12]}"
        if self.postgres:
            connection = await asyncpg.connect(self._admin_dsn())
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()
            self.created.append(name)
            url = f"{self.postgres.rstrip('/')}/{name}"
        else:
            url = f"sqlite+aiosqlite:///{self.directory / name}.db"
        if migrate:
            await migrations.upgrade(service, url)
        return url

    async def drop_all(self) -> None:
        if not self.postgres or not self.created:
            return
        connection = await asyncpg.connect(self._admin_dsn())
        try:
            for name in self.created:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
        self.created.clear()

    def _admin_dsn(self) -> str:
        assert self.postgres is not None
        url = make_url(self.postgres).set(drivername="postgresql", database="postgres")
        return url.render_as_string(hide_password=False)


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route of an app, those of the routers it includes too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def postgres_from_env() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


_KEYS = Path(tempfile.mkdtemp(prefix="csm-test-keys-"))


def common_settings_for_tests(bootstrap: str, prefix: str, keys_url: str | None = None) -> CommonSettings:
    """Settings for a test; the customers' keys in a store of their own unless ``keys_url`` says."""
    return CommonSettings(
        env="test",
        keys_database_url=keys_url or f"sqlite+aiosqlite:///{_KEYS / (prefix or 'none')}keys.db",
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        kafka_partitions=3,
        # A group join waits half the session timeout for other members: keep it short.
        kafka_session_timeout_ms=2_000,
        kafka_heartbeat_interval_ms=300,
        # Tests drive services far faster than a person; tests/shared/test_ratelimit.py turns them on.
        rate_limits_enabled=False,
    )


EVERY_SCOPE = tuple(f"{service}:{access}" for service in SERVICES for access in ACCESS)


def auth(
    role: Role = Role.agent, subject: str = "tester", *, scopes: Iterable[str] | None = None
) -> dict[str, str]:
    """Headers with a token; a service token may do everything unless ``scopes`` says otherwise."""
    if scopes is None:
        scopes = EVERY_SCOPE if role is Role.service else ()
    token = mint_token(common_settings_for_tests("unused", ""), subject=subject, role=role, scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def problem(response: httpx.Response, status: int) -> str:
    """The name of a problem+json answer's type (``.../problems/<name>``), once its status is checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("https://csm.dev/problems/"), body
    return str(body["type"]).rsplit("/", 1)[-1]


async def assert_documented(
    client: httpx.AsyncClient, method: str, path: str, answer: httpx.Response
) -> None:
    """``answer`` is what the service's live OpenAPI document says ``method path`` answers (a path template).

    Status, content type, headers and body are checked by schemathesis, formats included.
    """
    document = (await client.get("/openapi.json")).json()
    operation = schemathesis.openapi.from_dict(document)[path][method]
    operation.validate_response(answer)


@dataclass
class RunningService:
    name: str
    app: FastAPI
    client: httpx.AsyncClient
    database_url: str

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime


class Stack:
    """Services of one test, sharing a topic prefix so that no other test's events reach them."""

    def __init__(self, bootstrap: str, databases: Databases) -> None:
        self.bootstrap = bootstrap
        self.databases = databases
        self.prefix = f"t{uuid.uuid4().hex[:10]}."
        # The key store the stack's services share (shared.sealing), beside its databases.
        self.keys_url = f"sqlite+aiosqlite:///{databases.directory / self.prefix}keys.db"
        self.services: dict[str, RunningService] = {}
        self._exit = AsyncExitStack()

    @property
    def common(self) -> CommonSettings:
        return common_settings_for_tests(self.bootstrap, self.prefix, self.keys_url)

    async def start(
        self,
        name: str,
        *,
        clock: Clock | None = None,
        database_url: str | None = None,
        common: CommonSettings | None = None,
        **overrides: Any,
    ) -> RunningService:
        """Start ``name``; ``common``, if given, replaces the stack's shared settings."""
        entry = SERVICES[name]
        url = database_url or await self.databases.create(name)
        settings = entry.settings(
            database_url=url,
            common=common or self.common,
            outbox_poll_seconds=0.2,
            consumer_retry_backoff=(0.05, 0.1),
            **overrides,
        )
        module = __import__(entry.factory.split(":")[0], fromlist=["create_app"])
        app: FastAPI = module.create_app(settings, clock=clock)
        await self._exit.enter_async_context(app.router.lifespan_context(app))
        client = await self._exit.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
        )
        service = RunningService(name=name, app=app, client=client, database_url=url)
        self.services[name] = service
        return service

    async def opened(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """An event's data as it was on the broker, its sealed personal fields opened (shared.sealing)."""
        sealer = Sealer(KeyStore(self.keys_url))
        customer = uuid.UUID(envelope["data"]["customer_id"])
        try:
            await sealer.load([customer])
            return sealer.open(envelope["type"], envelope["data"], customer)
        finally:
            await sealer.store.close()

    def __getitem__(self, name: str) -> RunningService:
        return self.services[name]

    async def close(self) -> None:
        await self._exit.aclose()
        self.services.clear()


@asynccontextmanager
async def stack_of(bootstrap: str, databases: Databases) -> AsyncIterator[Stack]:
    stack = Stack(bootstrap, databases)
    try:
        yield stack
    finally:
        await stack.close()


async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.1) -> T:
    """Call ``check`` until it returns without an AssertionError; the last failure if time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(interval)
