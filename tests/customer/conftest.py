from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.broker import EmbeddedBroker
from tests.harness import Databases, Stack, stack_of


@pytest.fixture(scope="module")
async def customer_api(broker: EmbeddedBroker, databases: Databases) -> AsyncIterator[Stack]:
    """One customer service (no workers) for a module's tests of bad input, which change nothing.

    Each such test makes its own customers; sharing the service saves a database and a migration
    per case.
    """
    async with stack_of(broker.bootstrap, databases) as running:
        await running.start("customer", run_workers=False)
        yield running
