"""Too many requests get 429 with Retry-After: per address, per token, and failed sign-ins above all."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from shared.broker import EmbeddedBroker
from shared.settings import CommonSettings
from tests.harness import Databases, RunningService, Stack, auth, common_settings_for_tests, problem

REDIS = "redis://127.0.0.1:6379/0"


class LimitedStack(Stack):
    def __init__(self, bootstrap: str, databases: Databases, **limits: object) -> None:
        super().__init__(bootstrap, databases)
        self.limits = limits

    @property
    def common(self) -> CommonSettings:
        base = common_settings_for_tests(self.bootstrap, self.prefix)
        return base.model_copy(update={"rate_limits_enabled": True, **self.limits})


@pytest.fixture
async def limited(broker: EmbeddedBroker, databases: Databases) -> AsyncIterator[LimitedStack]:
    """Two customer services with the default limits (as in production), counted in memory."""
    stack = LimitedStack(broker.bootstrap, databases)
    try:
        yield stack
    finally:
        await stack.close()


async def test_a_burst_of_bad_tokens_gets_429_with_retry_after_and_health_stays_open(
    limited: LimitedStack,
) -> None:
    service = await limited.start("customer", run_workers=False)
    client = service.client
    bad = {"Authorization": "Bearer not-a-token"}
    answers = [(await client.get("/customers", headers=bad)).status_code for _ in range(30)]
    assert answers[:20] == [401] * 20  # the default: 20 failed authentications a minute per address
    assert answers[20:] == [429] * 10
    refused = await client.get("/customers", headers=bad)
    assert problem(refused, 429) == "rate-limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Guessing is slowed for that address whatever it sends next; health checks are never limited.
    assert (await client.get("/customers", headers=auth())).status_code == 429
    assert (await client.get("/healthz")).status_code == 200


async def test_one_token_is_limited_on_its_own(broker: EmbeddedBroker, databases: Databases) -> None:
    stack = LimitedStack(broker.bootstrap, databases, rate_limit_per_token="5/minute")
    try:
        client = (await stack.start("customer", run_workers=False)).client
        mine, theirs = auth(subject="busy"), auth(subject="other")
        assert [(await client.get("/customers", headers=mine)).status_code for _ in range(6)] == [200] * 5 + [
            429
        ]
        assert (await client.get("/customers", headers=theirs)).status_code == 200
    finally:
        await stack.close()


async def test_on_redis_every_replica_counts_in_one_place(
    broker: EmbeddedBroker, databases: Databases
) -> None:
    # Redis on this machine; a token of this run's own, so that earlier runs' counts do not matter.
    limits = {"rate_limit_storage": REDIS, "rate_limit_per_token": "6/minute"}
    stack = LimitedStack(broker.bootstrap, databases, **limits)
    url = await databases.create("customer")
    try:
        first: RunningService = await stack.start("customer", run_workers=False, database_url=url)
        stack.services.pop("customer")
        second: RunningService = await stack.start("customer", run_workers=False, database_url=url)
        token = auth(subject=f"replicated-{uuid.uuid4().hex}")
        statuses = []
        for replica in (first, second, first, second, first, second, first):
            statuses.append((await replica.client.get("/customers", headers=token)).status_code)
        assert statuses == [200] * 6 + [429], "six in all across the two replicas"
    finally:
        await stack.close()


async def test_a_redis_that_is_down_lets_requests_through(
    broker: EmbeddedBroker, databases: Databases
) -> None:
    stack = LimitedStack(broker.bootstrap, databases, rate_limit_storage="redis://127.0.0.1:1/0")
    try:
        client = (await stack.start("customer", run_workers=False)).client
        answer = await client.get("/customers", headers=auth())
        assert answer.status_code == 200, answer.text
    finally:
        await stack.close()


def test_a_rate_that_is_not_one_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="rate_limit_per_token"):
        CommonSettings(rate_limit_per_token="lots")
