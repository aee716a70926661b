"""The ``csm`` command."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

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
    var_dir: Annotated[Path, typer.Option(help="Where the SQLite files and logs go.")] = Path("var"),
) -> None:
    """Start the whole system on embedded defaults: broker, migrations, four services."""
    from services.supervisor import System

    configure_logging(CommonSettings().log_level)
    raise typer.Exit(System(var_dir=var_dir, kafka_port=kafka_port, say=typer.echo).run())


@app.command()
def serve(
    service: ServiceName,
    port: Annotated[int | None, typer.Option(help="Overrides CSM_<SERVICE>_PORT.")] = None,
    host: Annotated[str | None, typer.Option(help="Overrides CSM_<SERVICE>_HOST.")] = None,
) -> None:
    """Run one service (its API, and its relay, consumer and scanners unless run_workers is off)."""
    entry = _entry(service)
    settings = entry.settings()
    configure_logging(settings.common.log_level)
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
) -> None:
    """Mint a bearer token for local use (signed with CSM_JWT_SECRET)."""
    typer.echo(mint_token(CommonSettings(), subject=subject, role=role, ttl=timedelta(hours=hours)))


@app.command()
def asyncapi() -> None:
    """Print the event catalog as an AsyncAPI 3.0 document."""
    document = catalog_document(version=VERSION, bootstrap=CommonSettings().kafka_bootstrap)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
