"""The ``csm`` command."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn

from services.customer import cli as customer_cli
from services.registry import SERVICES, ServiceEntry
from shared import VERSION, migrations
from shared.auth import mint_token
from shared.broker import EmbeddedBroker
from shared.events.asyncapi import catalog_document
from shared.observability import configure_logging
from shared.roles import Role
from shared.settings import CommonSettings
from shared.settings import var_dir as default_var_dir

app = typer.Typer(help="csm: customer service management.", no_args_is_help=True, add_completion=False)
app.add_typer(customer_cli.app, name="import")

ServiceName = Annotated[str, typer.Argument(help="customer, segmentation, complaints or notify")]


def _entry(name: str) -> ServiceEntry:
    if name not in SERVICES:
        raise typer.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    return SERVICES[name]


@app.command()
def up(
    kafka_port: Annotated[int, typer.Option(help="Port of the embedded broker.")] = 9092,
    var_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the SQLite databases, the key store and the logs go (CSM_VAR_DIR); "
            "var/ of the checkout by default. Other commands find them there through CSM_VAR_DIR."
        ),
    ] = None,
) -> None:
    """Start the whole system on embedded defaults: broker, migrations, four services."""
    from services.supervisor import System

    if var_dir is not None:
        # The services, the migrations and the key store all read it (shared.settings.var_dir).
        os.environ["CSM_VAR_DIR"] = str(var_dir.expanduser().resolve())
    common = CommonSettings()
    configure_logging(common.log_level, common.log_format)
    raise typer.Exit(System(var_dir=default_var_dir(), kafka_port=kafka_port, say=typer.echo).run())


@app.command()
def serve(
    service: ServiceName,
    port: Annotated[int | None, typer.Option(help="Overrides CSM_<SERVICE>_PORT.")] = None,
    host: Annotated[str | None, typer.Option(help="Overrides CSM_<SERVICE>_HOST.")] = None,
) -> None:
    """Run one service (its API, and its relay, consumer and scanners unless run_workers is off)."""
    entry = _entry(service)
    settings = entry.settings()
    configure_logging(settings.common.log_level, settings.common.log_format)
    uvicorn.run(
        entry.factory,
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def migrate(
    services: Annotated[list[str] | None, typer.Argument(help="Services to migrate; all if none.")] = None,
) -> None:
    """Bring the services' databases to the latest schema."""
    names = services or list(SERVICES)

    async def run() -> None:
        for name in names:
            await migrations.upgrade(name, _entry(name).settings().database_url)
            typer.echo(f"{name}: migrated")

    asyncio.run(run())


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="The role the token carries.")],
    subject: Annotated[str, typer.Option(help="Who the token speaks for.")] = "local-user",
    hours: Annotated[float, typer.Option(help="Hours until it expires.")] = 12,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="For --role service: what it may do, as <service>:read or <service>:write "
            "(repeat the option); without one, a service token may do nothing."
        ),
    ] = None,
) -> None:
    """Mint a bearer token for local use (signed with CSM_JWT_SECRET)."""
    try:
        typer.echo(
            mint_token(
                CommonSettings(), subject=subject, role=role, ttl=timedelta(hours=hours), scopes=scope or ()
            )
        )
    except ValueError as refused:
        raise typer.BadParameter(str(refused), param_hint="--scope" if scope else "--hours") from None


@app.command()
def asyncapi() -> None:
    """Print the event catalog as an AsyncAPI 3.0 document."""
    common = CommonSettings()
    document = catalog_document(
        version=VERSION, bootstrap=common.kafka_bootstrap, topic_prefix=common.topic_prefix
    )
    typer.echo(json.dumps(document, indent=2))


@app.command()
def topics() -> None:
    """Create every topic the services use (theirs, the dead-letter topics, the epoch) if missing."""
    from shared.bus import Bus
    from shared.events import TOPICS, dead_letter_topic

    async def run() -> None:
        common = CommonSettings().model_copy(update={"kafka_create_topics": True})
        bus = Bus(common, client_id="csm-topics")
        await bus.ensure_topics([*TOPICS.values(), *(dead_letter_topic(name) for name in SERVICES)])
        typer.echo(f"topics ready on {common.kafka_bootstrap}")

    asyncio.run(run())


@app.command()
def broker(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092) -> None:
    """Run the embedded broker alone, in the foreground."""
    embedded = EmbeddedBroker(port).start()
    typer.echo(f"broker on {embedded.bootstrap}; Ctrl-C stops it")
    try:
        assert embedded.process is not None
        embedded.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()


dead_letters = typer.Typer(
    help="What a service's consumer gave up on: list, show, replay.", no_args_is_help=True
)
app.add_typer(dead_letters, name="dead-letters")

ServiceUrl = Annotated[
    str | None,
    typer.Option("--url", help="The service's address; its configured host and port if not given."),
]


def _admin_client(service: str, url: str | None) -> httpx.Client:
    entry = _entry(service)
    if url is None:
        settings = entry.settings()
        url = f"http://{settings.host}:{settings.port}"
    token = mint_token(CommonSettings(), subject="csm-cli", role=Role.admin, ttl=timedelta(minutes=5))
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _answer(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    if response.is_error:
        typer.echo(f"{response.status_code}: {body.get('detail') or body.get('title')}", err=True)
        raise typer.Exit(1)
    return body


@dead_letters.command("list")
def list_dead_letters(
    service: ServiceName,
    url: ServiceUrl = None,
    waiting: Annotated[bool, typer.Option(help="Only those not replayed yet.")] = False,
) -> None:
    """List a service's dead letters, newest first."""
    params: dict[str, str] = {"limit": "200"}
    if waiting:
        params["replayed"] = "false"
    with _admin_client(service, url) as client:
        cursor: str | None = None
        while True:
            page = _answer(
                client.get("/dead-letters", params={**params, **({"cursor": cursor} if cursor else {})})
            )
            for item in page["items"]:
                state = f"replayed {item['replayed_at']}" if item["replayed_at"] else "waiting"
                typer.echo(f"{item['id']}  {item['created_at']}  {item['topic']}  {state}  {item['reason']}")
            cursor = page["next_cursor"]
            if cursor is None:
                return


@dead_letters.command("show")
def show_dead_letter(service: ServiceName, dead_letter_id: str, url: ServiceUrl = None) -> None:
    """Print one dead letter with its record, as JSON."""
    with _admin_client(service, url) as client:
        typer.echo(
            json.dumps(_answer(client.get(f"/dead-letters/{dead_letter_id}")), indent=2, ensure_ascii=False)
        )


@dead_letters.command("replay")
def replay_dead_letter(service: ServiceName, dead_letter_id: str, url: ServiceUrl = None) -> None:
    """Apply a dead letter again; it takes effect once, and says why if it still fails."""
    with _admin_client(service, url) as client:
        result = _answer(client.post(f"/dead-letters/{dead_letter_id}/replay"))
    typer.echo(f"{result['id']}: {result['outcome']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
