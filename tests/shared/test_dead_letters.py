"""Dead letters outlive the broker: kept in the service's database, listed, inspected, replayed once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner, Result

from services import cli
from shared.broker import EmbeddedBroker, free_port
from shared.events import CONTENT_TYPE, Envelope, encode
from shared.events.customer import PurchaseRecorded
from shared.inbox import Handlers
from shared.roles import Role
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from tests.harness import Databases, auth, common_settings_for_tests, eventually, problem
from tests.shared.bus_helpers import purchase

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_a_dead_letter_survives_a_broker_restart_and_is_replayed_once(
    own_broker: EmbeddedBroker, databases: Databases
) -> None:
    ledger: dict[str, Any] = {"open": False, "applied": []}

    async def on_purchase(event: Envelope[PurchaseRecorded], *, session: AsyncSession) -> None:
        if not ledger["open"]:
            raise ValueError("the ledger is closed")
        ledger["applied"].append(event.id)

    def handlers(_runtime: Runtime) -> Handlers:
        return {PurchaseRecorded: on_purchase}

    spec = ServiceSpec(name="notify", title="t", description="t", version="0", routers=(), handlers=handlers)
    common = common_settings_for_tests(own_broker.bootstrap, "t.").model_copy(
        update={"kafka_epoch_check_seconds": 0.2}
    )
    settings = ServiceSettings(
        database_url=await databases.create("notify"),
        port=0,
        common=common,
        consumer_retry_backoff=(0.05,),
    )
    app = create_service_app(spec, settings)
    event = purchase(uuid.uuid4())

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            await _dead_letter_story(client, own_broker, event, ledger, url)
    finally:
        server.should_exit = True
        await serving


async def _dead_letter_story(
    client: httpx.AsyncClient,
    own_broker: EmbeddedBroker,
    event: Envelope[Any],
    ledger: dict[str, Any],
    url: str,
) -> None:
    admin = auth(Role.admin)

    async def one_dead_letter() -> dict[str, Any]:
        page = (await client.get("/dead-letters", headers=admin)).json()
        assert len(page["items"]) == 1
        return dict(page["items"][0])

    await eventually(_ready(client), timeout=30)
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            "t.csm.customer",
            value=encode(event),
            key=str(event.data.customer_id).encode(),
            headers=[("content-type", CONTENT_TYPE.encode()), ("traceparent", TRACEPARENT.encode())],
        )
    finally:
        await producer.stop()
    listed = await eventually(one_dead_letter, timeout=60)
    assert listed["kind"] == "handler_error" and "the ledger is closed" in listed["reason"]
    assert listed["replayed_at"] is None

    # The broker restarts empty: its dead-letter topic is gone, the database's copy is not.
    assert own_broker.process is not None
    own_broker.process.kill()
    own_broker.process.wait()
    own_broker.start()
    await eventually(_ready(client), timeout=60)
    assert (await one_dead_letter())["id"] == listed["id"]

    detail = (await client.get(f"/dead-letters/{listed['id']}", headers=admin)).json()
    assert detail["value"] == encode(event).decode()
    assert detail["key"] == str(event.data.customer_id)
    assert {"name": "traceparent", "value": TRACEPARENT} in detail["headers"], "the record's own headers"

    forbidden = await client.post(f"/dead-letters/{listed['id']}/replay", headers=auth(Role.manager))
    assert problem(forbidden, 403)

    still = await client.post(f"/dead-letters/{listed['id']}/replay", headers=admin)
    assert problem(still, 409).endswith("dead-letter-still-fails")
    assert "the ledger is closed" in still.json()["detail"]

    ledger["open"] = True
    replayed = await client.post(f"/dead-letters/{listed['id']}/replay", headers=admin)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["outcome"] == "applied"
    assert ledger["applied"] == [event.id]

    again = await client.post(f"/dead-letters/{listed['id']}/replay", headers=admin)
    assert problem(again, 409).endswith("dead-letter-already-replayed")
    assert ledger["applied"] == [event.id], "applied once"
    waiting = (await client.get("/dead-letters", params={"replayed": "false"}, headers=admin)).json()
    assert waiting["items"] == []
    missing = await client.get(f"/dead-letters/{uuid.uuid4()}", headers=admin)
    assert problem(missing, 404).endswith("dead-letter-not-found")


async def csm(*arguments: str) -> Result:
    """Run the ``csm`` command (in a thread: it blocks, and the service answers on this loop)."""

    def run() -> Result:
        return CliRunner().invoke(cli.app, list(arguments))

    return await asyncio.to_thread(run)


def _ready(client: httpx.AsyncClient) -> Any:
    async def check() -> None:
        try:
            response = await client.get("/readyz")
        except httpx.TransportError as error:  # not listening yet
            raise AssertionError(type(error).__name__) from error
        assert response.status_code == 200, response.text

    return check
