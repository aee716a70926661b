from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from shared.broker import EmbeddedBroker
from tests.harness import Databases, Stack, postgres_from_env, stack_of


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (tansu) on a free loopback port, for the whole session."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the test's own, which it may kill and start again (a new, empty log)."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    created = Databases(tmp_path_factory.mktemp("db"), postgres_from_env())
    await created.check()
    yield created
    await created.drop_all()


@pytest.fixture
async def stack(broker: EmbeddedBroker, databases: Databases) -> AsyncIterator[Stack]:
    async with stack_of(broker.bootstrap, databases) as running:
        yield running


def pytest_report_header() -> str:
    return f"csm databases: {'PostgreSQL' if postgres_from_env() else 'SQLite'}"
